//go:build linux

// Package mconsole speaks User-Mode Linux's management console protocol:
// commands sent to a running guest (version, config, remove, stop, go,
// sysrq, halt, ...), the list of running guests, and the notifications a
// guest (or its watchdog helper, package watchdog) sends to the socket named
// by `mconsole=notify:PATH`.
//
// Wire formats (docs/protocols.md §5, from the kernel's arch/um mconsole.h):
//
//	request  (524 bytes): u32 magic=0xcafebabe, u32 version=2, u32 len, char data[512]
//	reply    (12+len bytes): u32 err, u32 more, u32 len, char data[len]
//	notify   (16+len bytes): u32 magic, u32 version, u32 type, u32 len, char data[len]
//
// All integers are in host byte order: the guest runs on the same machine.
// Linux only.
package mconsole

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

const (
	// Magic starts every request and notification.
	Magic = 0xcafebabe
	// Version is the protocol version the kernel accepts (MCONSOLE_VERSION).
	Version = 2
	// MaxData is the size of a packet's data field (MCONSOLE_MAX_DATA).
	MaxData = 512
	// MaxCommand is the longest command text: the kernel wants data
	// NUL-terminated inside MaxData bytes.
	MaxCommand = MaxData - 1

	requestSize = 12 + MaxData
	replyHeader = 12
	// notifyHeader: the kernel's struct mconsole_notify has four 32-bit
	// fields before data, and the kernel sends only the used part of data.
	notifyHeader = 16
)

// hostOrder is the byte order of this machine, which is the guest kernel's.
var hostOrder = binary.NativeEndian

// ErrMalformed is returned (wrapped) for a packet that does not follow the
// protocol: short, a length past the data field, a wrong magic.
var ErrMalformed = errors.New("malformed mconsole packet")

// MarshalRequest encodes command as one request packet. Commands longer
// than MaxCommand bytes are cut there, as the C client does: the kernel
// would reject a longer one.
func MarshalRequest(command string) []byte {
	if len(command) > MaxCommand {
		command = command[:MaxCommand]
	}
	b := make([]byte, requestSize)
	hostOrder.PutUint32(b[0:], Magic)
	hostOrder.PutUint32(b[4:], Version)
	hostOrder.PutUint32(b[8:], uint32(len(command)))
	copy(b[12:], command)
	return b
}

// ReplyPart is one reply packet. A long answer comes in several parts;
// More is set on every part but the last.
type ReplyPart struct {
	Err  uint32
	More bool
	Data string
}

// UnmarshalBinary decodes one reply datagram. The kernel sends the header
// and len bytes of data, len counting the terminating NUL; the text ends at
// the first NUL, as the C client reads it.
func (p *ReplyPart) UnmarshalBinary(b []byte) error {
	if len(b) < replyHeader {
		return fmt.Errorf("%w: reply of %d bytes is shorter than its %d-byte header", ErrMalformed, len(b), replyHeader)
	}
	n := hostOrder.Uint32(b[8:])
	if n > MaxData {
		return fmt.Errorf("%w: reply data length %d exceeds %d", ErrMalformed, n, MaxData)
	}
	data := b[replyHeader:]
	if uint32(len(data)) < n {
		return fmt.Errorf("%w: reply says %d data bytes but carries %d", ErrMalformed, n, len(data))
	}
	data = data[:n]
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	p.Err = hostOrder.Uint32(b[0:])
	p.More = hostOrder.Uint32(b[4:]) != 0
	p.Data = string(data)
	return nil
}

// MarshalBinary encodes the part as the kernel would send it (for fakes and
// tests).
func (p *ReplyPart) MarshalBinary() ([]byte, error) {
	if len(p.Data) > MaxCommand {
		return nil, fmt.Errorf("reply data of %d bytes exceeds %d", len(p.Data), MaxCommand)
	}
	b := make([]byte, replyHeader+len(p.Data)+1)
	hostOrder.PutUint32(b[0:], p.Err)
	if p.More {
		hostOrder.PutUint32(b[4:], 1)
	}
	hostOrder.PutUint32(b[8:], uint32(len(p.Data)+1))
	copy(b[replyHeader:], p.Data)
	return b, nil
}

// Reply is a whole answer: its parts' text concatenated.
type Reply struct {
	// Err is the error code of the last part, as the kernel set it (0 for
	// success, often a negated errno such as -EBUSY). The C client exits
	// with it, truncated to 8 bits.
	Err uint32
	// Failed is true when any part carried a non-zero error: the C client
	// then prints ERR.
	Failed bool
	Text   string
}

// OK reports whether the command succeeded.
func (r *Reply) OK() bool { return !r.Failed }

// ExitStatus is the status the C client exits with for this reply: the
// error code truncated to 8 bits (-EBUSY gives 240, an unknown command 1).
func (r *Reply) ExitStatus() int { return int(r.Err & 0xff) }

// String formats the reply as the C client prints it: "OK text" or
// "ERR text" (without the newline).
func (r *Reply) String() string {
	if r.Failed {
		return "ERR " + r.Text
	}
	return "OK " + r.Text
}

// add appends one part; it reports whether more parts follow.
func (r *Reply) add(p ReplyPart) bool {
	r.Err = p.Err
	if p.Err != 0 {
		r.Failed = true
	}
	r.Text += p.Data
	return p.More
}

// NotificationType is what a notification announces.
type NotificationType uint32

// Notification types (enum in the kernel's mconsole.h).
const (
	// NotifySocket is sent at boot; its data is the guest's mconsole socket.
	NotifySocket NotificationType = 0
	// NotifyPanic is sent when the guest kernel panics; data is the message.
	NotifyPanic NotificationType = 1
	// NotifyHang is sent by the watchdog helper when the guest stopped
	// feeding its watchdog.
	NotifyHang NotificationType = 2
	// NotifyUser carries what a guest program wrote to /proc/mconsole.
	NotifyUser NotificationType = 3
)

func (t NotificationType) String() string {
	switch t {
	case NotifySocket:
		return "socket"
	case NotifyPanic:
		return "panic"
	case NotifyHang:
		return "hang"
	case NotifyUser:
		return "user"
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// Notification is one datagram a guest (or its watchdog helper) sent to the
// notify socket.
type Notification struct {
	Type NotificationType
	// Data is the payload with trailing NULs removed (the kernel counts the
	// NUL of the socket path in len).
	Data string
}

// MarshalBinary encodes the notification with the kernel's field sizes:
// 16 bytes of header and only the used data.
func (n *Notification) MarshalBinary() ([]byte, error) {
	if len(n.Data) > MaxData {
		return nil, fmt.Errorf("notification data of %d bytes exceeds %d", len(n.Data), MaxData)
	}
	b := make([]byte, notifyHeader+len(n.Data))
	hostOrder.PutUint32(b[0:], Magic)
	hostOrder.PutUint32(b[4:], Version)
	hostOrder.PutUint32(b[8:], uint32(n.Type))
	hostOrder.PutUint32(b[12:], uint32(len(n.Data)))
	copy(b[notifyHeader:], n.Data)
	return b, nil
}

// UnmarshalBinary decodes one notification datagram.
func (n *Notification) UnmarshalBinary(b []byte) error {
	if len(b) < notifyHeader {
		return fmt.Errorf("%w: notification of %d bytes is shorter than its %d-byte header", ErrMalformed, len(b), notifyHeader)
	}
	if m := hostOrder.Uint32(b[0:]); m != Magic {
		return fmt.Errorf("%w: notification magic %#x, want %#x", ErrMalformed, m, uint32(Magic))
	}
	l := hostOrder.Uint32(b[12:])
	if l > MaxData || uint32(len(b)-notifyHeader) < l {
		return fmt.Errorf("%w: notification says %d data bytes but carries %d", ErrMalformed, l, len(b)-notifyHeader)
	}
	n.Type = NotificationType(hostOrder.Uint32(b[8:]))
	n.Data = strings.TrimRight(string(b[notifyHeader:notifyHeader+int(l)]), "\x00")
	return nil
}
