package mconsole

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"
)

// WatchdogTimeout is how long the harddog helper waits for a ping before it
// acts, as the C uml_watchdog does (alarm(60), docs/protocols.md §6).
const WatchdogTimeout = 60 * time.Second

// ErrExpired: the guest stopped feeding its watchdog.
var ErrExpired = errors.New("watchdog expired: no ping from the guest in time")

// Watchdog is the host side of UML's harddog device. The guest kernel
// starts the helper with a pipe on stdin and one on stdout, waits for one
// byte on stdout (the helper is ready), and writes a byte to stdin for each
// ping; it closes the pipe when the guest closes /dev/watchdog.
type Watchdog struct {
	In      io.Reader // pings
	Out     io.Writer // the ready byte goes here
	Timeout time.Duration
}

// Wait says the helper is ready and waits for pings. It returns nil when
// the guest closed the watchdog (EOF on In), ErrExpired when Timeout (60 s
// if zero) passed without a ping, or the context's error.
func (w *Watchdog) Wait(ctx context.Context) error {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = WatchdogTimeout
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

// KillGuest ends a guest whose watchdog expired. Like the C helper it
// sends SIGINT to the kernel process twice, one interval apart, giving the
// kernel a chance to clean up; then, unlike it, it SIGKILLs the kernel
// process together with every process descended from it. The guest's
// programs run as host processes traced by the kernel: killing only the
// kernel process would leave them running (docs/testbed.md §6). The caller's own
// process (itself a child of the kernel) is spared, and so is everything
// outside the kernel's tree, such as the rest of its process group.
func KillGuest(pid int, interval time.Duration) error {
	// Snapshot the tree first: once the kernel exits, its children are
	// reparented and can no longer be told from other processes.
	tree := descendants(pid)
	for i := 0; i < 2; i++ {
		if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
			if err == syscall.ESRCH {
				break
			}
			return fmt.Errorf("SIGINT to guest kernel %d: %w", pid, err)
		}
		time.Sleep(interval)
		tree = tree.union(descendants(pid))
	}
	return killTree(pid, tree)
}
