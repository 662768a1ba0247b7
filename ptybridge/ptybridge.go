//go:build linux

// Package ptybridge is a serial cross-over cable between two pseudo
// terminals: what a UML serial line on pts or tty:PATH is plugged into.
//
// A Bridge copies bytes both ways between two ends, can log every chunk
// (direction, timestamp, bytes) to a tee, and can be cut and healed, so a
// heartbeat-over-serial failover can be tested. Open attaches to a pty a
// UML allocated (ssl1=pts prints "Serial line 1 assigned device
// '/dev/pts/N'"); NewPair allocates two ptys for guests started with
// ssl1=tty:PATH and keeps both ends, so either guest can reboot and
// reopen its path.
//
// Linux only. The log format is in docs/protocols.md §9.
package ptybridge

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// End is one side of the cable.
type End struct {
	// Name is how logs and errors call the end, e.g. its /dev/pts path.
	Name string
	// File is read and written; it should be non-blocking (as os.OpenFile
	// and creack/pty return ttys) so that Run can stop it.
	File *os.File
}

// Options tune a Bridge.
type Options struct {
	// Tee, when set, receives one line per chunk copied or dropped and
	// one per cut or heal (see Bridge.Run).
	Tee io.Writer
	// Hex logs bytes as hex instead of quoted text.
	Hex bool
	// Now stamps log records; time.Now if nil.
	Now func() time.Time
}

// Bridge is a running cable between A and B.
type Bridge struct {
	a, b End
	opt  Options
	cut  atomic.Bool
	mu   sync.Mutex // serializes Tee records
}

// New returns a bridge between a and b; Run starts it.
func New(a, b End, opt Options) *Bridge {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Bridge{a: a, b: b, opt: opt}
}

// ClosedError says an end hung up: the pty's other side went away (a UML
// that exited or rebooted reads EIO on its pts slave) or the end reached EOF.
type ClosedError struct {
	End string
	Err error
}

func (e *ClosedError) Error() string {
	if e.Err == nil || e.Err == io.EOF {
		return e.End + ": closed"
	}
	return fmt.Sprintf("%s: closed (%v)", e.End, e.Err)
}

func (e *ClosedError) Unwrap() error { return e.Err }

// SetCut cuts the cable (true: bytes read from either end are dropped and
// logged as dropped) or heals it (false), logging the change.
func (br *Bridge) SetCut(on bool) {
	if br.cut.Swap(on) != on {
		if on {
			br.record("--", "cut", nil)
		} else {
			br.record("--", "healed", nil)
		}
	}
}

// ToggleCut flips the cable's state and returns whether it is now cut.
func (br *Bridge) ToggleCut() bool {
	for {
		old := br.cut.Load()
		if br.cut.CompareAndSwap(old, !old) {
			if old {
				br.record("--", "healed", nil)
			} else {
				br.record("--", "cut", nil)
			}
			return !old
		}
	}
}

// Cut reports whether the cable is cut.
func (br *Bridge) Cut() bool { return br.cut.Load() }

// Run copies both ways until ctx is done (it returns nil then) or an end
// closes or fails (a *ClosedError, or the I/O error). Tee records are
//
//	2006-01-02T15:04:05.000000Z A>B "text with \r\n escapes"
//	2006-01-02T15:04:05.000000Z B>A dropped "bytes read while cut"
//	2006-01-02T15:04:05.000000Z -- cut
//
// with -hex style ("A>B 68690a") when Options.Hex is set.
func (br *Bridge) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- br.pump(ctx, br.a, br.b, "A>B") }()
	go func() { errs <- br.pump(ctx, br.b, br.a, "B>A") }()
	stop := context.AfterFunc(ctx, func() {
		// Wake the reads blocked in the poller.
		_ = br.a.File.SetReadDeadline(time.Unix(1, 0))
		_ = br.b.File.SetReadDeadline(time.Unix(1, 0))
		_ = br.a.File.SetWriteDeadline(time.Unix(1, 0))
		_ = br.b.File.SetWriteDeadline(time.Unix(1, 0))
	})
	defer stop()
	first := <-errs
	cancel()
	<-errs
	if ctx.Err() != nil && errors.Is(first, os.ErrDeadlineExceeded) {
		// Stopped by the caller, not by the cable.
		return nil
	}
	return first
}

// pump copies from src to dst until an error.
func (br *Bridge) pump(ctx context.Context, src, dst End, dir string) error {
	buf := make([]byte, 4096)
	for {
		n, err := src.File.Read(buf)
		if n > 0 {
			if br.cut.Load() {
				br.record(dir, "dropped", buf[:n])
			} else {
				br.record(dir, "", buf[:n])
				if _, werr := dst.File.Write(buf[:n]); werr != nil {
					return endError(ctx, dst.Name, werr)
				}
			}
		}
		if err != nil {
			return endError(ctx, src.Name, err)
		}
		if n == 0 {
			return &ClosedError{End: src.Name, Err: io.EOF}
		}
	}
}

// endError classifies an I/O error on end: EIO (the pty's other side is
// gone) and EOF mean the end closed.
func endError(ctx context.Context, end string, err error) error {
	if ctx.Err() != nil {
		return os.ErrDeadlineExceeded
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.EIO) {
		return &ClosedError{End: end, Err: err}
	}
	return fmt.Errorf("%s: %w", end, err)
}

// record writes one Tee line. Its errors are ignored: logging must not
// stop the cable.
func (br *Bridge) record(dir, what string, data []byte) {
	if br.opt.Tee == nil {
		return
	}
	line := make([]byte, 0, 64+len(data)*2)
	line = br.opt.Now().UTC().AppendFormat(line, "2006-01-02T15:04:05.000000Z")
	line = append(line, ' ')
	line = append(line, dir...)
	if what != "" {
		line = append(line, ' ')
		line = append(line, what...)
	}
	if data != nil {
		line = append(line, ' ')
		if br.opt.Hex {
			line = hex.AppendEncode(line, data)
		} else {
			line = strconv.AppendQuoteToASCII(line, string(data))
		}
	}
	line = append(line, '\n')
	br.mu.Lock()
	_, _ = br.opt.Tee.Write(line)
	br.mu.Unlock()
}

// MakeRaw puts the terminal f in raw mode (no echo, no line editing, no
// CR/NL translation, 8-bit clean), as cfmakeraw(3) does, so the cable
// carries the bytes the guests wrote.
func MakeRaw(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var terr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			terr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		terr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	if err != nil {
		return err
	}
	return terr
}

// ErrNotTerminal is returned by Open for a path that is not a
// pseudo-terminal slave (/dev/pts/N): a regular file, /dev/null, a serial
// port or a console.
var ErrNotTerminal = errors.New("not a terminal (want a pseudo-terminal such as /dev/pts/N)")

// ErrSameTerminal is returned by CheckDistinct for two paths that name the
// same terminal: bridged to itself, a guest would read its own output back.
var ErrSameTerminal = errors.New("both ends are the same terminal")

// Linux gives pseudo-terminal slaves the character majors 136 to 143
// (UNIX98_PTY_SLAVE_MAJOR and the 7 after it, Documentation/admin-guide/devices.txt).
const (
	ptySlaveMajorFirst = 136
	ptySlaveMajorLast  = 143
)

// ptySlave reports whether fi is a pseudo-terminal slave and its device
// number.
func ptySlave(fi os.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode()&os.ModeCharDevice == 0 {
		return 0, false
	}
	major := unix.Major(st.Rdev)
	return st.Rdev, major >= ptySlaveMajorFirst && major <= ptySlaveMajorLast
}

// CheckDistinct returns an error wrapping ErrSameTerminal when paths a and
// b are the same terminal (the same path, or a link to it).
func CheckDistinct(a, b string) error {
	fa, err := os.Stat(a)
	if err != nil {
		return err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return err
	}
	ra, _ := ptySlave(fa)
	rb, _ := ptySlave(fb)
	if os.SameFile(fa, fb) || ra != 0 && ra == rb {
		return fmt.Errorf("%s and %s: %w", a, b, ErrSameTerminal)
	}
	return nil
}

// Open opens the existing pseudo-terminal path (a pts a UML printed) for
// the bridge, without making it our controlling terminal, and puts it in
// raw mode. Anything else is refused before it is opened: opening a serial
// port can wait for carrier, and raw mode would change a real terminal's
// settings.
func Open(path string) (End, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return End{}, err
	}
	if _, ok := ptySlave(fi); !ok {
		return End{}, fmt.Errorf("%s: %w", path, ErrNotTerminal)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return End{}, err
	}
	// (Not f.Fd(): it would put the file back in blocking mode.)
	if err := MakeRaw(f); err != nil {
		f.Close()
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			return End{}, fmt.Errorf("%s: %w", path, ErrNotTerminal)
		}
		return End{}, fmt.Errorf("%s: raw mode: %w", path, err)
	}
	return End{Name: path, File: f}, nil
}
