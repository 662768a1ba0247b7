//go:build linux

package mconsole

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Listener receives the notifications of guests started with
// `mconsole=notify:PATH`: the socket notification at boot (the guest is up
// and its console reachable), panics, watchdog hangs and what guest
// programs write to /proc/mconsole.
type Listener struct {
	Path string
	conn *net.UnixConn
}

// Listen binds a datagram socket at path. An existing socket file is
// replaced only when nobody listens on it any more.
func Listen(path string) (*Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s: exists and is not a socket", path)
		}
		if c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"}); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another program listens on this socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &Listener{Path: path, conn: conn}, nil
}

// Next waits for the next notification. Malformed datagrams are returned
// as errors wrapping ErrMalformed; the listener stays usable after them.
func (l *Listener) Next(ctx context.Context) (*Notification, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Set the deadline before the cancellation hook exists: set after it,
	// it could undo the hook's past deadline and leave Read blocked.
	_ = l.conn.SetReadDeadline(time.Time{})
	if dl, ok := ctx.Deadline(); ok {
		_ = l.conn.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = l.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, notifyHeader+MaxData+64)
	n, err := l.conn.Read(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The socket's deadline may fire a moment before the
			// context's own timer.
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	var nt Notification
	if err := nt.UnmarshalBinary(buf[:n]); err != nil {
		return nil, err
	}
	return &nt, nil
}

// Close stops listening and removes the socket file.
func (l *Listener) Close() error {
	err := l.conn.Close()
	if rerr := os.Remove(l.Path); err == nil && rerr != nil && !os.IsNotExist(rerr) {
		err = rerr
	}
	return err
}

// Notify sends one notification to the socket at path, as the guest kernel
// and the watchdog helper do.
func Notify(path string, n *Notification) error {
	b, err := n.MarshalBinary()
	if err != nil {
		return err
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(DefaultTimeout))
	_, err = conn.Write(b)
	return err
}
