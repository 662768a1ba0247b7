package agent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/umlutils/umlutils/ptybridge"
	"golang.org/x/sys/unix"
)

// ErrTimeout is returned when the agent does not answer in time: the guest
// is stopped, still booting, or its agent is not running.
var ErrTimeout = errors.New("the guest's agent did not answer")

// Client is one session with a guest's agent over one serial line.
type Client struct {
	Path string // the line's host side: a pty, or the FIFO the guest writes to

	in  *os.File // what the guest writes
	out *os.File // what the guest reads
	r   *Reader
	mu  sync.Mutex // serialises writes
}

// Open opens the line whose host side is the terminal at path (a UML
// `sslN=pts` line) and resets the session on it. The reset must be
// answered within timeout.
func Open(ctx context.Context, path string, timeout time.Duration) (*Client, error) {
	f, err := openNonblock(path)
	if err != nil {
		return nil, err
	}
	if err := ptybridge.MakeRaw(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: raw mode: %w", path, err)
	}
	return start(ctx, &Client{Path: path, in: f, out: f}, timeout)
}

// OpenFIFOs opens a line whose host side is a pair of FIFOs (a UML
// `sslN=fd:IN,fd:OUT` line whose descriptors are FIFOs the kernel holds
// open): toGuest is the one the guest reads, fromGuest the one it writes.
// Unlike a pty, a FIFO the kernel holds open never hangs the line up when
// a client goes away.
func OpenFIFOs(ctx context.Context, toGuest, fromGuest string, timeout time.Duration) (*Client, error) {
	out, err := openNonblock(toGuest)
	if err != nil {
		return nil, err
	}
	in, err := openNonblock(fromGuest)
	if err != nil {
		out.Close()
		return nil, err
	}
	return start(ctx, &Client{Path: fromGuest, in: in, out: out}, timeout)
}

// openNonblock opens path read-write and non-blocking, so that Go's poller
// gives it deadlines (and a FIFO's open does not wait for a peer).
func openNonblock(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

func start(ctx context.Context, c *Client, timeout time.Duration) (*Client, error) {
	c.r = NewReader(c.in)
	if err := c.reset(ctx, timeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close ends the client's side of the session. A command still running in
// the guest is stopped by the next client's reset.
func (c *Client) Close() error {
	err := c.in.Close()
	if c.out != c.in {
		c.out.Close()
	}
	return err
}

func (c *Client) send(t Type, p []byte) error {
	b, err := (&Frame{Type: t, Payload: p}).MarshalBinary()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err = c.out.Write(b)
	return err
}

// deadline sets the read deadline from ctx and timeout and returns a stop
// function that undoes a cancellation watch.
func (c *Client) deadline(ctx context.Context, timeout time.Duration) func() {
	d := time.Time{}
	if timeout > 0 {
		d = time.Now().Add(timeout)
	}
	if cd, ok := ctx.Deadline(); ok && (d.IsZero() || cd.Before(d)) {
		d = cd
	}
	c.in.SetReadDeadline(d)
	c.out.SetWriteDeadline(d)
	stop := context.AfterFunc(ctx, func() {
		c.in.SetReadDeadline(time.Now())
		c.out.SetWriteDeadline(time.Now())
	})
	return func() { stop() }
}

func (c *Client) wrap(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w", c.Path, ErrTimeout)
	}
	return fmt.Errorf("%s: %w", c.Path, err)
}

func (c *Client) reset(ctx context.Context, timeout time.Duration) error {
	defer c.deadline(ctx, timeout)()
	nonce := make([]byte, 8)
	rand.Read(nonce)
	if err := c.send(Reset, nonce); err != nil {
		return c.wrap(ctx, err)
	}
	for {
		fr, err := c.r.Next()
		if err != nil {
			return c.wrap(ctx, err)
		}
		if fr.Type == ResetAck && string(fr.Payload) == string(nonce) {
			return nil
		}
	}
}

// Status asks the guest for its state.
func (c *Client) Status(ctx context.Context, timeout time.Duration) (*StatusReply, error) {
	defer c.deadline(ctx, timeout)()
	if err := c.send(Status, nil); err != nil {
		return nil, c.wrap(ctx, err)
	}
	for {
		fr, err := c.r.Next()
		if err != nil {
			return nil, c.wrap(ctx, err)
		}
		if fr.Type != StatusIs {
			continue
		}
		var s StatusReply
		if err := json.Unmarshal(fr.Payload, &s); err != nil {
			return nil, fmt.Errorf("%s: status: %w", c.Path, err)
		}
		return &s, nil
	}
}

// Resize tells a TTY session the terminal's new size.
func (c *Client) Resize(rows, cols uint16) error {
	p := make([]byte, 4)
	binary.BigEndian.PutUint16(p, rows)
	binary.BigEndian.PutUint16(p[2:], cols)
	return c.send(Winsize, p)
}

// Signal sends sig to the session's command.
func (c *Client) Signal(sig syscall.Signal) error { return c.send(Signal, []byte{byte(sig)}) }

// ExitError is returned by Run when the command could not be started.
type ExitError struct{ Msg string }

func (e *ExitError) Error() string { return e.Msg }

// Run runs req in the guest, copying stdin to it (until EOF; nil means
// none) and its output to stdout and stderr, and returns its exit status.
// Cancelling ctx abandons the session (the command is stopped by the next
// reset on the line).
func (c *Client) Run(ctx context.Context, req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	defer c.deadline(ctx, 0)()
	b, err := json.Marshal(req)
	if err != nil {
		return -1, err
	}
	if err := c.send(Exec, b); err != nil {
		return -1, c.wrap(ctx, err)
	}
	if stdin != nil {
		go c.pumpStdin(stdin)
	} else {
		c.send(StdinEOF, nil)
	}
	for {
		fr, err := c.r.Next()
		if err != nil {
			return -1, c.wrap(ctx, err)
		}
		switch fr.Type {
		case Stdout:
			if _, err := stdout.Write(fr.Payload); err != nil {
				return -1, err
			}
		case Stderr:
			if _, err := stderr.Write(fr.Payload); err != nil {
				return -1, err
			}
		case Exit:
			var st ExitStatus
			if err := json.Unmarshal(fr.Payload, &st); err != nil {
				return -1, fmt.Errorf("%s: exit status: %w", c.Path, err)
			}
			if st.Error != "" {
				return st.Code, &ExitError{Msg: st.Error}
			}
			return st.Code, nil
		}
	}
}

func (c *Client) pumpStdin(r io.Reader) {
	buf := make([]byte, 16<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if c.send(Stdin, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			c.send(StdinEOF, nil)
			return
		}
	}
}
