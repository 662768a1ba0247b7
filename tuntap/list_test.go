package tuntap

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

func attr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b[0:], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// linkMsg builds an RTM_NEWLINK body as tun_fill_info would.
func linkMsg(name, kind string, data []byte) []byte {
	hdr := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(hdr[4:], 7)
	info := attr(unix.IFLA_INFO_KIND, append([]byte(kind), 0))
	if data != nil {
		info = append(info, attr(unix.IFLA_INFO_DATA|unix.NLA_F_NESTED, data)...)
	}
	return cat(hdr, attr(unix.IFLA_IFNAME, append([]byte(name), 0)),
		attr(unix.IFLA_LINKINFO|unix.NLA_F_NESTED, info))
}

func TestParseLink(t *testing.T) {
	data := cat(attr(unix.IFLA_TUN_OWNER, u32(1000)), attr(unix.IFLA_TUN_TYPE, []byte{unix.IFF_TAP}),
		attr(unix.IFLA_TUN_PI, []byte{0}), attr(unix.IFLA_TUN_PERSIST, []byte{1}),
		attr(unix.IFLA_TUN_NUM_QUEUES, u32(1)))
	info, ok, err := parseLink(linkMsg("tap3", "tun", data))
	want := Info{Name: "tap3", Index: 7, Kind: Tap, Persist: true, Owner: 1000, Group: NoID, Queues: 1}
	if err != nil || !ok || info != want {
		t.Fatalf("parseLink = %+v %v %v, want %+v", info, ok, err, want)
	}
	if _, ok, err := parseLink(linkMsg("br0", "bridge", nil)); ok || err != nil {
		t.Errorf("a bridge parsed as tun/tap: %v %v", ok, err)
	}
	if _, _, err := parseLink(linkMsg("x", "tun", attr(unix.IFLA_TUN_OWNER, []byte{1}))); err == nil {
		t.Errorf("a 1-byte IFLA_TUN_OWNER was accepted")
	}
	if _, _, err := parseLink([]byte{1, 2, 3}); err == nil {
		t.Errorf("a short ifinfomsg was accepted")
	}
}

func FuzzParseLink(f *testing.F) {
	f.Add(linkMsg("tap0", "tun", cat(attr(unix.IFLA_TUN_GROUP, u32(5)), attr(unix.IFLA_TUN_TYPE, []byte{unix.IFF_TUN}))))
	f.Add(linkMsg("eth0", "veth", nil))
	f.Add(make([]byte, unix.SizeofIfInfomsg))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, ok, err := parseLink(b)
		if err != nil && (ok || info != Info{}) {
			t.Fatalf("error %v with a result %+v %v", err, info, ok)
		}
	})
}

func TestAttachRejectsLongName(t *testing.T) {
	if _, err := Attach("/nonexistent", "sixteen-bytes-xx", Tap); err == nil {
		t.Fatal("a 16-byte name was accepted")
	}
	if _, err := Attach("/nonexistent/tun", "tap0", Tap); err == nil {
		t.Fatal("a missing clone device was accepted")
	}
}
