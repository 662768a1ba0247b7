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
	"github.com/umlutils/umlutils/mconsole"
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

// errNoTerminal: the guest has not opened the line (yet, or again).
var errNoTerminal = errors.New("no terminal")

// linePath asks the kernel which host pty serves the guest's ttySN.
func linePath(ctx context.Context, mc *mconsole.Client, n int) (string, error) {
	rep, err := mc.Command(ctx, fmt.Sprintf("config ssl%d", n))
	if err != nil {
		return "", err
	}
	if !rep.OK() {
		return "", fmt.Errorf("config ssl%d: %s", n, rep.Text)
	}
	p, ok := strings.CutPrefix(strings.TrimSpace(rep.Text), "pts:")
	if !ok || p == "" {
		return "", fmt.Errorf("serial line %d has no terminal yet (%q): the guest's agent has not opened it: %w", n, rep.Text, errNoTerminal)
	}
	return p, nil
}

// Agent opens a session with a running machine's agent on a free serial
// line; umlab processes share lines through lock files in the runtime
// directory (a line carries one session at a time). It waits for a line
// while all are busy.
func (r *Runner) Agent(ctx context.Context, machine string) (*Session, error) {
	mc, ms, err := r.Console(machine)
	if err != nil {
		return nil, err
	}
	defer mc.Close()
	return r.agentOf(ctx, mc, ms, AgentTimeout)
}

func (r *Runner) agentOf(ctx context.Context, mc *mconsole.Client, ms *MachineState, timeout time.Duration) (*Session, error) {
	// The agent closes a line after each session and reopens it 100 ms
	// later; in between the kernel reports no terminal for it. A line in
	// that state is skipped, and retried until timeout, so back-to-back
	// execs on one machine do not fail.
	deadline := time.Now().Add(timeout)
	for {
		var lineErr error
		for _, n := range agent.DefaultChannels {
			f, err := os.OpenFile(r.rt.Path(fmt.Sprintf("%s.tty%d.lock", ms.Name, n)), os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				return nil, err
			}
			if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
				f.Close()
				continue
			}
			path, err := linePath(ctx, mc, n)
			if errors.Is(err, errNoTerminal) {
				f.Close()
				lineErr = err
				continue
			}
			if err == nil {
				var c *agent.Client
				c, err = agent.Open(ctx, path, timeout)
				if err == nil {
					return &Session{Client: c, lock: f}, nil
				}
			}
			f.Close()
			if errors.Is(err, agent.ErrTimeout) {
				return nil, fmt.Errorf("%s: the guest does not answer (stopped, still booting, or its agent is not running): %w", ms.Name, err)
			}
			return nil, fmt.Errorf("%s: %w", ms.Name, err)
		}
		if lineErr != nil && time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: %w", ms.Name, lineErr)
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
