package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/umlutils/umlutils/lab/agent"
	"golang.org/x/sys/unix"
)

// AgentTimeout bounds the wait for a guest's agent to answer a reset: a
// stopped (frozen) guest, or one still booting, does not.
var AgentTimeout = 5 * time.Second

// Session is an open line to a machine's agent.
type Session struct {
	*agent.Client
	lock *os.File
}

// Close ends the session and frees its line for other umlab processes.
func (s *Session) Close() error {
	err := s.Client.Close()
	s.lock.Close()
	return err
}

// lineFIFOs are the host side of a machine's agent line n: the FIFO the
// guest reads and the one it writes, in the runtime directory. The kernel
// holds both open (sslN=fd:IN,fd:OUT), so clients come and go freely.
func (r *Runner) lineFIFOs(machine string, n int) (toGuest, fromGuest string) {
	base := r.rt.Path(fmt.Sprintf("%s.tty%d", machine, n))
	return base + ".in", base + ".out"
}

// Agent opens a session with a running machine's agent on a free serial
// line; umlab processes share lines through lock files in the runtime
// directory (a line carries one session at a time). It waits for a line
// while all are busy.
func (r *Runner) Agent(ctx context.Context, machine string) (*Session, error) {
	s, err := r.rt.Load()
	if err != nil {
		return nil, err
	}
	ms, err := liveMachine(s, machine)
	if err != nil {
		return nil, err
	}
	return r.agentOf(ctx, ms, AgentTimeout)
}

func (r *Runner) agentOf(ctx context.Context, ms *MachineState, timeout time.Duration) (*Session, error) {
	for {
		var errs []error
		busy := 0
		for _, n := range agent.DefaultChannels {
			f, err := os.OpenFile(r.rt.Path(fmt.Sprintf("%s.tty%d.lock", ms.Name, n)), os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				return nil, err
			}
			if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
				f.Close()
				busy++
				continue
			}
			to, from := r.lineFIFOs(ms.Name, n)
			c, err := agent.OpenFIFOs(ctx, to, from, timeout)
			if err == nil {
				return &Session{Client: c, lock: f}, nil
			}
			f.Close()
			if errors.Is(err, agent.ErrTimeout) {
				// A guest that does not answer on one line answers on none.
				return nil, fmt.Errorf("%s: the guest does not answer (stopped, still booting, or its agent is not running): %w", ms.Name, err)
			}
			errs = append(errs, err)
		}
		if busy == 0 {
			return nil, fmt.Errorf("%s: %w", ms.Name, errors.Join(errs...))
		}
		if err := ctxSleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// Exec runs argv in a running machine as root and returns its exit status.
// A single word holding spaces is run by /bin/sh -c, so `umlab exec r1 "ip
// route | grep default"` works as it does for Kathará.
func (r *Runner) Exec(ctx context.Context, machine string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 1 && strings.ContainsAny(argv[0], " \t|;&<>$`'\"*?()") {
		argv = []string{"/bin/sh", "-c", argv[0]}
	}
	s, err := r.Agent(ctx, machine)
	if err != nil {
		return -1, err
	}
	defer s.Close()
	return s.Run(ctx, agent.ExecRequest{Argv: argv}, stdin, stdout, stderr)
}

// Status returns a running machine's startup state.
func (r *Runner) Status(ctx context.Context, machine string) (*agent.StatusReply, error) {
	s, err := r.Agent(ctx, machine)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Client.Status(ctx, AgentTimeout)
}
