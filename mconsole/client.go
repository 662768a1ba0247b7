//go:build linux

package mconsole

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultTimeout bounds a command when the caller's context has no
// deadline. A guest paused with `stop` still answers, so silence this long
// means a frozen (SIGSTOPped) or hung guest.
const DefaultTimeout = 5 * time.Second

// NoSuchUMIDError: no mconsole socket was found for a name.
type NoSuchUMIDError struct {
	UMID  string
	Tried []string // the paths looked at, in order
}

func (e *NoSuchUMIDError) Error() string {
	return fmt.Sprintf("no such umid %q (no socket at %s)", e.UMID, strings.Join(e.Tried, ", "))
}

// Is makes errors.Is(err, ErrNoSuchUMID) true.
func (e *NoSuchUMIDError) Is(target error) bool { return target == ErrNoSuchUMID }

// NotSocketError: the name resolved to a file that exists but is not a
// socket (a regular file, a directory such as ~/.uml/UMID itself).
type NotSocketError struct {
	Path string
	Mode os.FileMode
}

func (e *NotSocketError) Error() string {
	what := "not a socket"
	if e.Mode.IsDir() {
		what = "a directory, not an mconsole socket"
	} else if e.Mode.IsRegular() {
		what = "a regular file, not an mconsole socket"
	}
	return fmt.Sprintf("%s: is %s", e.Path, what)
}

// Sentinel errors, to test with errors.Is.
var (
	// ErrNoSuchUMID: the name resolves to no socket.
	ErrNoSuchUMID = errors.New("no such umid")
	// ErrStale: the socket file exists but nobody listens on it (the guest
	// died without removing it).
	ErrStale = errors.New("nobody listens on the mconsole socket (stale socket: the guest is gone)")
	// ErrTimeout: the guest did not answer in time (frozen or hung; a guest
	// paused with `stop` still answers).
	ErrTimeout = errors.New("no reply from the guest in time (frozen or hung?)")
)

// Error wraps a failure of a command with the socket it was sent to.
type Error struct {
	Socket  string
	Command string
	Err     error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %q: %v", e.Socket, e.Command, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Resolution is where a umid's console lives.
type Resolution struct {
	// Name is what the user gave.
	Name string
	// Socket is the mconsole socket path.
	Socket string
	// PIDFile is the guest's pid file beside the socket (it may not exist
	// when a bare socket path was given).
	PIDFile string
}

// Resolve finds the socket of a umid the way the C client does:
// ~/.uml/NAME/mconsole, then /tmp/uml/NAME/mconsole, then NAME as a path.
func Resolve(name string) (*Resolution, error) {
	var tried []string
	var cands []string
	if home := homeDir(); home != "" && name != "" {
		cands = append(cands, filepath.Join(home, ".uml", name, "mconsole"))
	}
	if name != "" {
		cands = append(cands, filepath.Join("/tmp/uml", name, "mconsole"), name)
	}
	for _, c := range cands {
		tried = append(tried, c)
		if fi, err := os.Stat(c); err == nil {
			// The C client takes the first name that exists and then
			// reports "Connection refused" for a file or directory;
			// say what is wrong instead.
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, &NotSocketError{Path: c, Mode: fi.Mode()}
			}
			return &Resolution{Name: name, Socket: c, PIDFile: filepath.Join(filepath.Dir(c), "pid")}, nil
		}
	}
	if len(tried) == 0 {
		tried = []string{"(empty name)"}
	}
	return nil, &NoSuchUMIDError{UMID: name, Tried: tried}
}

// homeDir is $HOME as the C client reads it, falling back to the password
// database's idea of it (os.UserHomeDir reads only $HOME).
func homeDir() string {
	if h := os.Getenv("HOME"); h != "" {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return ""
}

// PID reads the guest's pid from its pid file.
func (r *Resolution) PID() (int, error) {
	b, err := os.ReadFile(r.PIDFile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: no pid in %q", r.PIDFile, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// Client sends commands to one guest's mconsole socket.
type Client struct {
	// Socket is the guest's mconsole socket path.
	Socket string
	// Timeout bounds each command when its context has no deadline;
	// DefaultTimeout if zero.
	Timeout time.Duration

	// mu serialises commands: replies carry no request id, so only one
	// command may be outstanding on a socket.
	mu   sync.Mutex
	sock *clientSocket
}

// Close releases the client's socket. The client stays usable.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop()
	return nil
}

func (c *Client) drop() {
	if c.sock != nil {
		c.sock.close()
		c.sock = nil
	}
}

// Dial resolves name (see Resolve) and returns a client for it.
func Dial(name string) (*Client, error) {
	r, err := Resolve(name)
	if err != nil {
		return nil, err
	}
	return &Client{Socket: r.Socket}, nil
}

// Command sends one command and returns the guest's whole answer. A
// non-nil error means no answer: the reply's own error code is in Reply.
// The client keeps its socket between commands; after any failure it
// drops it, so a late answer to a timed-out command can never be taken
// for the answer to the next one.
func (c *Client) Command(ctx context.Context, command string) (*Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.command(ctx, command)
	if err != nil {
		c.drop()
		return nil, &Error{Socket: c.Socket, Command: command, Err: err}
	}
	return r, nil
}

func (c *Client) command(ctx context.Context, command string) (*Reply, error) {
	if _, hasDeadline := ctx.Deadline(); !hasDeadline {
		t := c.Timeout
		if t <= 0 {
			t = DefaultTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.sock == nil {
		s, err := openClientSocket()
		if err != nil {
			return nil, err
		}
		c.sock = s
	}
	s := c.sock
	stop := context.AfterFunc(ctx, s.wakeUp)
	defer func() {
		// A wake-up may already be pending: the socket is spoilt for the
		// next command.
		if !stop() {
			c.drop()
		}
	}()
	deadline, _ := ctx.Deadline()

	to := &unix.SockaddrUnix{Name: c.Socket}
	req := MarshalRequest(command)
	for {
		err := unix.Sendto(s.fd, req, unix.MSG_DONTWAIT, to)
		if err == nil {
			break
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return nil, c.classify(err)
		}
		// The guest's queue is full: it is not reading (frozen). poll(2)
		// cannot tell when an unconnected peer's queue drains, so retry
		// every few milliseconds until the deadline.
		if err := s.wait(ctx, 0, time.Now().Add(10*time.Millisecond)); err != nil && err != ErrTimeout {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, ErrTimeout
		}
	}
	var reply Reply
	buf := make([]byte, replyHeader+MaxData+64)
	for {
		n, _, err := unix.Recvfrom(s.fd, buf, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN || err == unix.EINTR {
			if err := s.wait(ctx, unix.POLLIN, deadline); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, c.classify(err)
		}
		var p ReplyPart
		if err := p.UnmarshalBinary(buf[:n]); err != nil {
			return nil, err
		}
		if !reply.add(p) {
			return &reply, nil
		}
	}
}

func (c *Client) classify(err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrStale
	case errors.Is(err, syscall.ENOENT):
		return &NoSuchUMIDError{UMID: c.Socket, Tried: []string{c.Socket}}
	}
	return err
}

// clientSocket is a datagram socket bound to a kernel-chosen abstract
// address (bind with only the address family): the guest needs an address
// to reply to, and an abstract one leaves no file behind. The calling
// thread waits in poll(2) on it, as the C client waits in recvfrom, which
// costs less per command than going through Go's network poller; an
// eventfd beside it lets a cancelled context cut the wait short.
type clientSocket struct {
	fd   int
	wake int
}

func openClientSocket() (*clientSocket, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &clientSocket{fd: fd, wake: wake}, nil
}

func (s *clientSocket) wakeUp() {
	var one [8]byte
	one[0] = 1 // eventfd counters are host-order u64; any non-zero value wakes
	_, _ = unix.Write(s.wake, one[:])
}

func (s *clientSocket) close() {
	unix.Close(s.fd)
	unix.Close(s.wake)
}

// wait polls for events on the socket (none: only sleep) until the
// deadline; it returns ErrTimeout when the deadline passes and the
// context's error when it is cancelled.
func (s *clientSocket) wait(ctx context.Context, events int16, deadline time.Time) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return ErrTimeout
		}
		ms := int((left + time.Millisecond - 1) / time.Millisecond)
		sockFd := int32(s.fd)
		if events == 0 {
			sockFd = -1 // poll(2) ignores negative descriptors
		}
		fds := []unix.PollFd{{Fd: sockFd, Events: events}, {Fd: int32(s.wake), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		if n == 0 {
			continue // the loop re-checks the deadline
		}
		if fds[1].Revents != 0 {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return ErrTimeout
			}
			return ctx.Err()
		}
		return nil
	}
}
