// Package tuntap creates, configures and opens Linux TUN/TAP devices through
// the /dev/net/tun clone device.
//
// A tap device is bound to the network namespace of the process that opens
// /dev/net/tun, so everything here acts on the caller's namespace.
package tuntap

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// CloneDevice is the default clone device, as in tunctl's "-f" default.
const CloneDevice = "/dev/net/tun"

// ifreq mirrors struct ifreq as used by the TUN ioctls: a name followed by a
// union whose first member we use is the short flags field.
type ifreq struct {
	Name  [unix.IFNAMSIZ]byte
	Flags uint16
	_     [22]byte
}

// newIfreq fills an ifreq, rejecting names the kernel would truncate or refuse.
func newIfreq(name string, flags uint16) (*ifreq, error) {
	if len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("interface name %q: longer than %d bytes", name, unix.IFNAMSIZ-1)
	}
	req := &ifreq{Flags: flags}
	copy(req.Name[:], name)
	return req, nil
}

func (r *ifreq) name() string {
	for i, c := range r.Name {
		if c == 0 {
			return string(r.Name[:i])
		}
	}
	return string(r.Name[:])
}

func ioctlPtr(fd uintptr, req uint, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg)); e != 0 {
		return e
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
	f, _, err := attach(CloneDevice, name, unix.IFF_TAP|unix.IFF_NO_PI)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// attach opens clone, binds it with TUNSETIFF and returns the file and the
// name the kernel chose (name may contain a "%d" pattern or be empty). The fd
// is set non-blocking before wrapping so that os.NewFile registers it with
// the runtime poller and Read/Write honour deadlines and Close.
func attach(clone, name string, flags uint16) (*os.File, string, error) {
	req, err := newIfreq(name, flags)
	if err != nil {
		return nil, "", err
	}
	fd, err := unix.Open(clone, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", &os.PathError{Op: "open", Path: clone, Err: err}
	}
	if err := ioctlPtr(uintptr(fd), unix.TUNSETIFF, unsafe.Pointer(req)); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("TUNSETIFF %q on %s: %w", name, clone, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("set %s non-blocking: %w", clone, err)
	}
	got := req.name()
	return os.NewFile(uintptr(fd), got), got, nil
}
