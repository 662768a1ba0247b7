package swload

import (
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/umlutils/umlutils/internal/mmsg"
)

// One-way load across two switches (or two kernel bridges) in different
// network namespaces: a sender on one side, a receiver on the other, each
// its own process (a process's sockets live in one namespace). An endpoint
// is either a synthetic UML port (daemon protocol, ctl) or an AF_PACKET
// socket on a network interface, so the same frames can be pushed through
// uml_switch and through the kernel's bridge alike.

// Endpoint is one side's frame socket.
type Endpoint struct {
	fd   int
	to   []byte // raw destination address for sends
	c    *Client
	name string
}

// OpenEndpoint opens a daemon port on the switch at ctl, or, with ctl
// empty, an AF_PACKET socket on interface ifname (needs CAP_NET_RAW)
// receiving only the generator's traffic frames.
func OpenEndpoint(ctl, ifname string) (*Endpoint, error) {
	if ctl != "" {
		c, err := Dial(ctl, 3, "")
		if err != nil {
			return nil, err
		}
		return &Endpoint{fd: c.FD, to: c.Switch, c: c, name: ctl}, nil
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	proto := htons(typeTraffic)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket on %s: %w", ifname, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding to %s: %w", ifname, err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	// struct sockaddr_ll: family, protocol (network order), ifindex,
	// hatype, pkttype, halen, addr[8].
	to := make([]byte, unix.SizeofSockaddrLinklayer)
	binary.NativeEndian.PutUint16(to, unix.AF_PACKET)
	binary.NativeEndian.PutUint16(to[2:], proto)
	binary.NativeEndian.PutUint32(to[4:], uint32(ifi.Index))
	to[11] = 6
	return &Endpoint{fd: fd, to: to, name: ifname}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Close closes the endpoint.
func (e *Endpoint) Close() error {
	if e.c != nil {
		return e.c.Close()
	}
	return unix.Close(e.fd)
}

// Announce sends a broadcast from mac so that switches and bridges on the
// way learn where it lives.
func (e *Endpoint) Announce(mac [6]byte) error {
	b := mmsg.NewSendBatch(1)
	f := Frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac, typeTraffic, 64)
	f[14] = 0xff // not counted by Sink: marks an announcement
	b.Add(e.to, f)
	return e.send(b)
}

func (e *Endpoint) send(b *mmsg.SendBatch) error {
	for b.Len() > 0 {
		if _, err := b.Send(e.fd, 0); err != nil && err != unix.EINTR && err != unix.EAGAIN && err != unix.ENOBUFS {
			return err
		}
	}
	return nil
}

// Blast sends frames of size bytes from src to dst for d, in bursts of 32
// with blocking sends, and returns how many it sent.
func (e *Endpoint) Blast(src, dst [6]byte, size int, d time.Duration) (uint64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const burst = 32
	f := Frame(dst, src, typeTraffic, size)
	b := mmsg.NewSendBatch(burst)
	var sent uint64
	deadline := time.Now().Add(d)
	for round := 0; ; round++ {
		if round%8 == 0 && !time.Now().Before(deadline) {
			return sent, nil
		}
		for k := 0; k < burst; k++ {
			b.Add(e.to, f)
		}
		if err := e.send(b); err != nil {
			return sent, err
		}
		sent += burst
	}
}

// SinkResult is what a receiver counted: traffic frames, and the time from
// the first to the last.
type SinkResult struct {
	Received uint64
	Span     time.Duration
}

// FramesPerSec is the delivered rate.
func (r SinkResult) FramesPerSec() float64 {
	if r.Span <= 0 {
		return 0
	}
	return float64(r.Received) / r.Span.Seconds()
}

// Sink counts traffic frames until idle has passed without one after the
// first, or until max has passed.
func (e *Endpoint) Sink(idle, max time.Duration) (SinkResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b := mmsg.NewRecvBatch(64, 2048)
	var r SinkResult
	var first, last time.Time
	end := time.Now().Add(max)
	for time.Now().Before(end) {
		n, err := b.Recv(e.fd, 0, unix.MSG_WAITFORONE)
		now := time.Now()
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			return r, err
		}
		k := 0
		for i := 0; i < n; i++ {
			f := b.Frame(i)
			if len(f) > 14 && binary.BigEndian.Uint16(f[12:]) == typeTraffic && f[14] != 0xff {
				k++
			}
		}
		if k > 0 {
			if first.IsZero() {
				first = now
			}
			last = now
			r.Received += uint64(k)
		} else if !first.IsZero() && now.Sub(last) > idle {
			break
		}
	}
	r.Span = last.Sub(first)
	return r, nil
}
