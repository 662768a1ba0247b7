//go:build linux

// Package tuntap creates, configures, lists and opens Linux TUN/TAP devices
// through the /dev/net/tun clone device and rtnetlink.
//
// A tun/tap device belongs to the network namespace of the process that
// opened /dev/net/tun, and persistence and ownership are properties of the
// device, so everything here acts on the caller's namespace.
//
// Linux only. The ioctls and attributes are in docs/protocols.md §7.
package tuntap

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// CloneDevice is the default clone device (tunctl's "-f" default).
const CloneDevice = "/dev/net/tun"

// Kind says whether a device carries Ethernet frames (tap) or IP packets (tun).
type Kind int

const (
	// Tap devices carry Ethernet frames (IFF_TAP); what UML's tuntap
	// transport and uml_switch -tap use.
	Tap Kind = iota
	// Tun devices carry bare IP packets (IFF_TUN).
	Tun
)

func (k Kind) String() string {
	if k == Tun {
		return "tun"
	}
	return "tap"
}

// flags are the TUNSETIFF flags for k. IFF_NO_PI: no 4-byte packet-info
// header, so each read or write is exactly one frame, as tunctl and UML use.
func (k Kind) flags() uint16 {
	if k == Tun {
		return unix.IFF_TUN | unix.IFF_NO_PI
	}
	return unix.IFF_TAP | unix.IFF_NO_PI
}

// IoctlError reports a failed tun ioctl; Op is the request's name as the
// kernel headers spell it (TUNSETIFF, TUNSETPERSIST, ...), Err the errno.
type IoctlError struct {
	Op     string
	Device string
	Err    error
}

func (e *IoctlError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Op, e.Device, e.Err)
}

func (e *IoctlError) Unwrap() error { return e.Err }

// ErrNameTooLong is returned for a name that does not fit the kernel's
// IFNAMSIZ (16 bytes including the terminating NUL).
var ErrNameTooLong = errors.New("interface name longer than 15 bytes")

// ifreq mirrors struct ifreq as the TUN ioctls read it: the name, then a
// union whose member used here is the short ifr_flags. 40 bytes on Linux.
type ifreq struct {
	Name  [unix.IFNAMSIZ]byte
	Flags uint16
	_     [22]byte
}

func (r *ifreq) name() string {
	for i, c := range r.Name {
		if c == 0 {
			return string(r.Name[:i])
		}
	}
	return string(r.Name[:])
}

// Queue is one open file descriptor attached to a tun/tap device. Frames
// are read and written through File; closing the last queue of a
// non-persistent device removes the device.
type Queue struct {
	f    *os.File
	name string
	kind Kind
}

// Attach opens clone and binds it with TUNSETIFF to the device name of the
// given kind, creating the device when it does not exist (needs
// CAP_NET_ADMIN). An empty name, or one holding a "%d", lets the kernel pick
// the name ("tap%d" by default); Name reports it.
//
// The fd is made non-blocking before it is wrapped, so os.NewFile registers
// it with Go's poller and reads honour deadlines and Close.
func Attach(clone, name string, kind Kind) (*Queue, error) {
	if len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("%q: %w", name, ErrNameTooLong)
	}
	req := &ifreq{Flags: kind.flags()}
	copy(req.Name[:], name)
	fd, err := unix.Open(clone, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: clone, Err: err}
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(req))); e != 0 {
		unix.Close(fd)
		return nil, &IoctlError{Op: "TUNSETIFF", Device: name, Err: e}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("making %s non-blocking: %w", clone, err)
	}
	got := req.name()
	return &Queue{f: os.NewFile(uintptr(fd), got), name: got, kind: kind}, nil
}

// Name is the device's name as the kernel assigned it.
func (q *Queue) Name() string { return q.name }

// Kind is the kind the queue was attached as.
func (q *Queue) Kind() Kind { return q.kind }

// File carries one frame (tap) or packet (tun) per Read or Write.
func (q *Queue) File() *os.File { return q.f }

// Close detaches the queue.
func (q *Queue) Close() error { return q.f.Close() }

// SetPersist makes the device outlive its queues (TUNSETPERSIST 1), or
// removes that so it disappears when its last queue closes (0).
func (q *Queue) SetPersist(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return q.ioctlInt("TUNSETPERSIST", unix.TUNSETPERSIST, v)
}

// SetOwner lets the user uid attach to the device without CAP_NET_ADMIN
// (TUNSETOWNER).
func (q *Queue) SetOwner(uid uint32) error {
	return q.ioctlInt("TUNSETOWNER", unix.TUNSETOWNER, int(uid))
}

// SetGroup lets members of group gid attach to the device (TUNSETGROUP,
// Linux 2.6.23 and later).
func (q *Queue) SetGroup(gid uint32) error {
	return q.ioctlInt("TUNSETGROUP", unix.TUNSETGROUP, int(gid))
}

func (q *Queue) ioctlInt(op string, req uint, v int) error {
	rc, err := q.f.SyscallConn()
	if err != nil {
		return &IoctlError{Op: op, Device: q.name, Err: err}
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = unix.IoctlSetInt(int(fd), req, v) }); err != nil {
		ierr = err
	}
	if ierr != nil {
		return &IoctlError{Op: op, Device: q.name, Err: ierr}
	}
	return nil
}

// OpenTap attaches to the tap device name (IFF_TAP|IFF_NO_PI via TUNSETIFF on
// /dev/net/tun), creating a non-persistent one when it does not exist (needs
// CAP_NET_ADMIN). The returned *os.File carries one Ethernet frame per
// Read/Write and works with Go's poller (non-blocking fd).
func OpenTap(name string) (*os.File, error) {
	if name == "" {
		return nil, errors.New("tap device name is empty")
	}
	q, err := Attach(CloneDevice, name, Tap)
	if err != nil {
		return nil, err
	}
	return q.File(), nil
}

// NoID leaves a device's owner or group unset in Create.
const NoID = -1

// Create makes a persistent device of the given kind through clone and
// returns its name (name may be empty or hold "%d"). uid and gid, when not
// NoID, become its owner and group. When setting the owner or group fails,
// the device is made non-persistent again, so a failed Create leaves no
// device behind that was not there before.
func Create(clone, name string, kind Kind, uid, gid int64) (string, error) {
	q, err := Attach(clone, name, kind)
	if err != nil {
		return "", err
	}
	defer q.Close()
	if err := q.SetPersist(true); err != nil {
		return "", err
	}
	if err := q.setIDs(uid, gid); err != nil {
		_ = q.SetPersist(false)
		return "", err
	}
	return q.name, nil
}

func (q *Queue) setIDs(uid, gid int64) error {
	if uid != NoID {
		if err := q.SetOwner(uint32(uid)); err != nil {
			return err
		}
	}
	if gid != NoID {
		if err := q.SetGroup(uint32(gid)); err != nil {
			return err
		}
	}
	return nil
}

// Delete makes the existing device name non-persistent, which removes it
// once no process holds a queue of it. It attaches with the device's own
// kind (looked up with List), so it deletes tun devices as well as taps.
func Delete(clone, name string) error {
	d, err := Lookup(name)
	if err != nil {
		return err
	}
	q, err := Attach(clone, name, d.Kind)
	if err != nil {
		return err
	}
	defer q.Close()
	return q.SetPersist(false)
}
