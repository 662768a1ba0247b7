//go:build linux

package ptybridge

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Pair is two ptys allocated for a cable: guests open PathA and PathB
// (ssl1=tty:PATH), the bridge uses A and B (the masters).
//
// The pair also keeps each slave open itself, so that a master never reads
// EIO while its guest is away (rebooting): the cable stays up and the next
// guest to open the path is connected.
type Pair struct {
	A, B         End
	PathA, PathB string
	slaves       [2]*os.File
}

// NewPair allocates two ptys with raw line disciplines.
func NewPair() (*Pair, error) {
	p := &Pair{}
	for i, end := range []*End{&p.A, &p.B} {
		m, s, err := pty.Open()
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("allocating a pty: %w", err)
		}
		p.slaves[i] = s
		pm, err := pollable(m)
		if err != nil {
			s.Close()
			p.Close()
			return nil, err
		}
		*end = End{Name: s.Name(), File: pm}
		if err := MakeRaw(s); err != nil {
			p.Close()
			return nil, fmt.Errorf("%s: raw mode: %w", s.Name(), err)
		}
	}
	p.PathA, p.PathB = p.A.Name, p.B.Name
	return p, nil
}

// pollable returns f as a file in Go's poller, closing f. creack/pty hands
// out the master in blocking mode (it calls Fd), where deadlines, and so
// Run's cancellation, do not work; os.NewFile registers an fd that is
// already non-blocking.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// Close releases both ptys.
func (p *Pair) Close() error {
	for _, f := range []*os.File{p.A.File, p.B.File, p.slaves[0], p.slaves[1]} {
		if f != nil {
			f.Close()
		}
	}
	return nil
}
