package cow

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Lock is a lock another process or open file description holds on a
// file. A running UML takes POSIX (fcntl) locks when it opens a ubd
// device: a write lock on the COW file and a read lock on the backing
// file (docs/protocols.md §4). Devices opened with the `c` flag take none.
type Lock struct {
	// Pid holds the POSIX lock's owner; -1 for an OFD lock (its owner is
	// an open file, not a process).
	Pid   int
	Write bool
}

func (l *Lock) String() string {
	kind := "read"
	if l.Write {
		kind = "write"
	}
	if l.Pid > 0 {
		return fmt.Sprintf("process %d holds a %s lock on it", l.Pid, kind)
	}
	return fmt.Sprintf("another open file holds a %s lock on it", kind)
}

// InUseError reports a file that a running guest (or another merge) has
// locked.
type InUseError struct {
	Path string
	Role string // "COW file" or "backing file"
	Lock Lock
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s %s is in use: %s (a running UML?)", e.Role, e.Path, e.Lock.String())
}

// InUse reports the first lock another process holds on path, or nil. It
// asks with F_OFD_GETLK for a write lock over the whole file, which
// conflicts with (and so reports) read and write locks alike, POSIX and
// OFD, of every other process.
func InUse(path string) (*Lock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return lockOf(f)
}

func lockOf(f *os.File) (*Lock, error) {
	fl := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &fl); err != nil {
		return nil, fmt.Errorf("F_OFD_GETLK on %s: %w", f.Name(), err)
	}
	if fl.Type == unix.F_UNLCK {
		return nil, nil
	}
	return &Lock{Pid: int(fl.Pid), Write: fl.Type == unix.F_WRLCK}, nil
}

// holdLock takes an OFD lock on the whole file for as long as f is open,
// so that a guest starting on the file meanwhile fails to get its own
// lock (and so refuses to start) instead of writing under our feet.
// It returns an *InUseError when another holder conflicts.
func holdLock(f *os.File, role string, write bool) error {
	typ := int16(unix.F_RDLCK)
	if write {
		typ = unix.F_WRLCK
	}
	fl := unix.Flock_t{Type: typ}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &fl)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		l, _ := lockOf(f)
		if l == nil {
			l = &Lock{Pid: -1}
		}
		return &InUseError{Path: f.Name(), Role: role, Lock: *l}
	}
	return fmt.Errorf("locking %s %s: %w", role, f.Name(), err)
}

// checkFree returns an *InUseError when another process locks f.
func checkFree(f *os.File, role string) error {
	l, err := lockOf(f)
	if err != nil {
		return err
	}
	if l != nil {
		return &InUseError{Path: f.Name(), Role: role, Lock: *l}
	}
	return nil
}
