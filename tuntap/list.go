//go:build linux

package tuntap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

// Info describes one tun/tap device as rtnetlink reports it.
type Info struct {
	Name    string
	Index   int
	Kind    Kind
	Persist bool
	// Owner and Group are NoID when unset: the kernel then omits
	// IFLA_TUN_OWNER/IFLA_TUN_GROUP, which is why this package parses the
	// link dump itself (a decoder that defaults them to 0 cannot tell
	// "owned by root" from "no owner").
	Owner, Group int64
	MultiQueue   bool
	VnetHdr      bool
	PI           bool
	Queues       int
}

// List returns the tun/tap devices of the caller's network namespace,
// sorted by name, from an RTM_GETLINK dump (kind "tun" in IFLA_LINKINFO).
func List() ([]Info, error) {
	rib, err := syscall.NetlinkRIB(unix.RTM_GETLINK, unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink link dump: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink link dump: %w", err)
	}
	var out []Info
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != unix.RTM_NEWLINK {
			continue
		}
		info, ok, err := parseLink(m.Data)
		if err != nil {
			return nil, fmt.Errorf("rtnetlink link dump: %w", err)
		}
		if ok {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ErrNoDevice is returned by Lookup and Delete when no tun/tap device of
// the caller's namespace has the name.
var ErrNoDevice = errors.New("no such tun/tap device")

// Lookup returns the tun/tap device name of the caller's namespace.
func Lookup(name string) (Info, error) {
	devs, err := List()
	if err != nil {
		return Info{}, err
	}
	for _, d := range devs {
		if d.Name == name {
			return d, nil
		}
	}
	return Info{}, fmt.Errorf("%s: %w", name, ErrNoDevice)
}

// ErrMalformed is returned for a link message whose attributes overrun it.
var ErrMalformed = errors.New("malformed rtnetlink attribute")

// parseLink decodes the body of an RTM_NEWLINK message (struct ifinfomsg,
// 16 bytes, then attributes); ok is false for links that are not tun/tap.
func parseLink(b []byte) (info Info, ok bool, err error) {
	if len(b) < unix.SizeofIfInfomsg {
		return info, false, io.ErrUnexpectedEOF
	}
	info = Info{Index: int(int32(binary.NativeEndian.Uint32(b[4:8]))), Owner: NoID, Group: NoID}
	isTun := false
	err = walkAttrs(b[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) error {
		switch typ {
		case unix.IFLA_IFNAME:
			info.Name = cString(v)
		case unix.IFLA_LINKINFO:
			return walkAttrs(v, func(typ uint16, v []byte) error {
				switch typ {
				case unix.IFLA_INFO_KIND:
					isTun = cString(v) == "tun"
				case unix.IFLA_INFO_DATA:
					return parseTunData(&info, v)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return Info{}, false, err
	}
	return info, isTun, nil
}

// parseTunData decodes IFLA_INFO_DATA of a "tun" link (IFLA_TUN_*, from
// drivers/net/tun.c tun_fill_info: u32 owner/group, u8 type and booleans).
func parseTunData(info *Info, b []byte) error {
	return walkAttrs(b, func(typ uint16, v []byte) error {
		var want int
		switch typ {
		case unix.IFLA_TUN_OWNER, unix.IFLA_TUN_GROUP, unix.IFLA_TUN_NUM_QUEUES:
			want = 4
		case unix.IFLA_TUN_TYPE, unix.IFLA_TUN_PI, unix.IFLA_TUN_VNET_HDR,
			unix.IFLA_TUN_PERSIST, unix.IFLA_TUN_MULTI_QUEUE:
			want = 1
		default:
			return nil
		}
		if len(v) < want {
			return ErrMalformed
		}
		switch typ {
		case unix.IFLA_TUN_OWNER:
			info.Owner = int64(binary.NativeEndian.Uint32(v))
		case unix.IFLA_TUN_GROUP:
			info.Group = int64(binary.NativeEndian.Uint32(v))
		case unix.IFLA_TUN_NUM_QUEUES:
			info.Queues = int(binary.NativeEndian.Uint32(v))
		case unix.IFLA_TUN_TYPE:
			if v[0] == unix.IFF_TUN {
				info.Kind = Tun
			} else {
				info.Kind = Tap
			}
		case unix.IFLA_TUN_PI:
			info.PI = v[0] != 0
		case unix.IFLA_TUN_VNET_HDR:
			info.VnetHdr = v[0] != 0
		case unix.IFLA_TUN_PERSIST:
			info.Persist = v[0] != 0
		case unix.IFLA_TUN_MULTI_QUEUE:
			info.MultiQueue = v[0] != 0
		}
		return nil
	})
}

// walkAttrs calls fn for each netlink attribute in b (struct nlattr: u16
// length including the 4-byte header, u16 type; padded to 4 bytes). The
// nested flag bit of the type is masked off.
func walkAttrs(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return ErrMalformed
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b) {
			return ErrMalformed
		}
		if err := fn(typ, b[4:l]); err != nil {
			return err
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			l = len(b)
		}
		b = b[l:]
	}
	return nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
