//go:build linux

// Package watchdog is the host side of User-Mode Linux's harddog device:
// the helper a guest kernel execs when the guest opens /dev/watchdog
// (uml_watchdog), and the kill of a guest that stopped feeding it.
//
// The protocol (docs/protocols.md §6): the kernel starts the helper with a
// pipe on stdin and one on stdout; the helper writes one byte to say it is
// ready, then expects at least one byte on stdin every 60 s. EOF means the
// guest closed the device. On a timeout the helper either kills the guest
// (KillGuest) or sends the guest's notify socket a hang notification
// (mconsole.Notify with mconsole.NotifyHang).
//
// Linux only: the kill walks /proc.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// DefaultTimeout is how long the harddog helper waits for a ping before it
// acts, as the C uml_watchdog does (alarm(60), docs/protocols.md §6).
const DefaultTimeout = 60 * time.Second

// ErrExpired: the guest stopped feeding its watchdog.
var ErrExpired = errors.New("watchdog expired: no ping from the guest in time")

// Helper is the harddog helper's side of the pipes. The guest kernel
// starts the helper with a pipe on stdin and one on stdout, waits for one
// byte on stdout (the helper is ready), and writes a byte to stdin for each
// ping; it closes the pipe when the guest closes /dev/watchdog.
type Helper struct {
	In      io.Reader // pings
	Out     io.Writer // the ready byte goes here
	Timeout time.Duration
}

// Wait says the helper is ready and waits for pings. It returns nil when
// the guest closed the watchdog (EOF on In), ErrExpired when Timeout (60 s
// if zero) passed without a ping, or the context's error.
func (w *Helper) Wait(ctx context.Context) error {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// The C helper writes a single NUL byte; the kernel only checks that
	// one byte arrives.
	if _, err := w.Out.Write([]byte{0}); err != nil {
		return fmt.Errorf("writing the ready byte: %w", err)
	}
	pings := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := w.In.Read(buf)
			if n > 0 {
				select {
				case pings <- nil:
				default: // a ping is already pending; one is enough
				}
			}
			if err != nil {
				pings <- err
				return
			}
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case err := <-pings:
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading pings: %w", err)
			}
			if !timer.Stop() {
				<-timer.C
			}
			timer.Reset(timeout)
		case <-timer.C:
			return ErrExpired
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
