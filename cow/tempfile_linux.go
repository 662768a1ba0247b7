package cow

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// tempFile is a new file that appears under its final name only when
// complete. Where the file system allows, it is made without a name
// (O_TMPFILE), so that even a killed process (SIGKILL, the OOM killer)
// leaves nothing behind; elsewhere it has a hidden name beside the target,
// removed on failure.
type tempFile struct {
	*os.File
	target string
	name   string // its visible name; "" while unnamed
}

// useTmpfile is turned off by tests of the named fallback.
var useTmpfile = true

// newTempFile makes a file, mode 0644 less the umask (what creat(target,
// 0644) gives), in target's directory.
func newTempFile(target string) (*tempFile, error) {
	dir := filepath.Dir(target)
	// Naming it later goes through /proc/self/fd (linkat with
	// AT_EMPTY_PATH needs a capability); without /proc, use a name.
	if _, err := os.Stat("/proc/self/fd"); err == nil && useTmpfile {
		fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
		if err == nil {
			return &tempFile{File: os.NewFile(uintptr(fd), target), target: target}, nil
		}
		// Unsupported here (EOPNOTSUPP, or EISDIR from kernels that
		// predate it): fall through; a real problem (EACCES, ENOENT)
		// recurs below and is reported from there.
	}
	name, f, err := createTemp(target)
	if err != nil {
		return nil, err
	}
	return &tempFile{File: f, target: target, name: name}, nil
}

// link gives the file the name path; it fails if path exists.
func (t *tempFile) link(path string) error {
	if t.name != "" {
		return os.Link(t.name, path)
	}
	proc := "/proc/self/fd/" + strconv.Itoa(int(t.Fd()))
	err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return &os.LinkError{Op: "link", Old: t.target, New: path, Err: err}
	}
	return nil
}

// commit names the file target, replacing what is there if replace, and
// closes it; on failure the file is discarded.
func (t *tempFile) commit(replace bool) error {
	if !replace {
		err := t.link(t.target)
		if err != nil {
			t.discard()
			return err
		}
		return t.discard() // drops the hidden name, if any; target stays
	}
	if t.name == "" {
		// rename(2) takes names only: give the file a hidden one first.
		for i := 0; ; i++ {
			name := tempName(t.target)
			err := t.link(name)
			if err == nil {
				t.name = name
				break
			}
			if !errors.Is(err, os.ErrExist) || i > 10 {
				t.discard()
				return err
			}
		}
	}
	if err := os.Rename(t.name, t.target); err != nil {
		t.discard()
		return err
	}
	t.name = ""
	return t.discard()
}

// discard closes the file and removes its hidden name, if any.
func (t *tempFile) discard() error {
	err := t.Close()
	if t.name != "" {
		os.Remove(t.name)
		t.name = ""
	}
	return err
}
