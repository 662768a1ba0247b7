// Package swload drives a uml_switch over the UML daemon protocol for
// benchmarks and tests: it registers synthetic ports exactly as a UML does
// (a 110-byte abstract data socket name, a v3 request on the control
// socket) and sends and receives frames in batches.
//
// It is project-internal: the bench script and the switch's tests use it
// against our switch and the C original alike.
package swload

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/umlutils/umlutils/internal/mmsg"
	vswitch "github.com/umlutils/umlutils/switch"
)

// Client is one synthetic UML port. Its data socket is blocking (sends
// wait while the switch's queue is full, as a guest's would) with a short
// receive timeout; Drain watches many clients with one epoll set.
type Client struct {
	Ctl    *net.UnixConn
	Name   [mmsg.SizeofSockaddrUnix]byte // our data socket, raw
	Switch []byte                        // the switch's data socket, raw
	FD     int
}

// Dial binds a data socket with a random 108-byte abstract name, sends a
// request of the given version (3, 1 or 0) and reads the reply (none for 0:
// then dataPath names the switch's data socket).
func Dial(ctl string, version uint32, dataPath string) (*Client, error) {
	c := &Client{FD: -1}
	binary.LittleEndian.PutUint16(c.Name[:], unix.AF_UNIX)
	copy(c.Name[3:], "swload.")
	var r [16]byte
	_, _ = rand.Read(r[:])
	copy(c.Name[10:], r[:])
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c.FD = fd
	if err := mmsg.Bind(fd, c.Name[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("binding data socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: 1})
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: ctl, Net: "unix"})
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Ctl = conn
	req := vswitch.Request{Version: version, Sock: c.Name}
	req.MAC = [6]byte{2, 0, 0, 0, 0, 1}
	b, _ := req.MarshalBinary()
	if _, err := conn.Write(b); err != nil {
		c.Close()
		return nil, err
	}
	if version == 0 {
		c.Switch = make([]byte, mmsg.SizeofSockaddrUnix)
		binary.LittleEndian.PutUint16(c.Switch, unix.AF_UNIX)
		copy(c.Switch[2:], dataPath)
		return c, nil
	}
	reply := make([]byte, mmsg.SizeofSockaddrUnix)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n := 0
	for n < len(reply) {
		m, err := conn.Read(reply[n:])
		n += m
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("reading the switch's reply (%d of %d bytes): %w", n, len(reply), err)
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	c.Switch = reply
	// Connected to the switch, our socket's queue is bounded by the
	// switch's send buffer instead of net.unix.max_dgram_qlen (10 by
	// default): bursts are absorbed here, so what is measured is the
	// switch, not the generator's wake-ups.
	if err := mmsg.Connect(fd, reply); err != nil {
		c.Close()
		return nil, fmt.Errorf("connecting to the switch's data socket: %w", err)
	}
	return c, nil
}

// Close closes the control connection (the switch then drops the port) and
// the data socket.
func (c *Client) Close() error {
	if c.Ctl != nil {
		c.Ctl.Close()
		c.Ctl = nil
	}
	if c.FD >= 0 {
		fd := c.FD
		c.FD = -1
		return unix.Close(fd)
	}
	return nil
}

// Send sends everything in b to the switch, waiting (up to a second at a
// time) while its queue is full.
func (c *Client) Send(b *mmsg.SendBatch) error {
	for b.Len() > 0 {
		if _, err := b.Send(c.FD, 0); err != nil && err != unix.EINTR {
			return err
		}
	}
	return nil
}

// SendTo sends one frame to the switch, waiting while its queue is full.
func (c *Client) SendTo(frame []byte) error {
	for {
		err := mmsg.SendTo(c.FD, frame, 0, c.Switch)
		if err != unix.EINTR {
			return err
		}
	}
}

// Recv waits up to 100 ms for datagrams and fills b with what is there.
// A timeout is unix.EAGAIN.
func (c *Client) Recv(b *mmsg.RecvBatch) (int, error) {
	return b.Recv(c.FD, 0, unix.MSG_WAITFORONE)
}

// Drain receives on all clients from one thread and hands every batch to
// got (with the client's index) until stop is closed. It sweeps all
// sockets, then sleeps a little: the clients are connected to the switch,
// so their queues hold thousands of frames (not net.unix.max_dgram_qlen's
// 10) and nothing is lost between sweeps, while the generator wakes far
// less often than the switch it measures.
func Drain(cs []*Client, stop <-chan struct{}, got func(i int, b *mmsg.RecvBatch)) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b := mmsg.NewRecvBatch(64, 2048)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		for i, c := range cs {
			for {
				m, err := b.Recv(c.FD, 0, unix.MSG_DONTWAIT)
				if err != nil || m == 0 {
					break
				}
				got(i, b)
				if m < b.Cap() {
					break
				}
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// Unconnect dissolves the association with the switch's data socket, so
// the kernel bounds our receive queue by net.unix.max_dgram_qlen as it does
// for a real UML (which never connects its data socket).
func (c *Client) Unconnect() error {
	return mmsg.Connect(c.FD, []byte{byte(unix.AF_UNSPEC), 0})
}
