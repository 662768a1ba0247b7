//go:build linux

package cow

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// CreateOptions tune Create.
type CreateOptions struct {
	// Force replaces an existing file at the COW path (uml_mkcow -f).
	Force bool
	// SectorSize is 512 if zero, as the kernel and uml_mkcow use.
	SectorSize int64
	// Alignment is the page size if zero, as the kernel and uml_mkcow use.
	Alignment int64
}

// AbsBacking makes a backing path absolute the way the kernel and the C
// uml_mkcow do: the directory part is resolved to its physical path (they
// chdir into it and call getcwd), the last component is kept as given, so
// a symbolic link there stays a link in the header.
func AbsBacking(backing string) (string, error) {
	i := strings.LastIndexByte(backing, '/')
	if i < 0 {
		cwd, err := unix.Getwd() // physical, unlike os.Getwd which may trust $PWD
		if err != nil {
			return "", fmt.Errorf("current directory: %w", err)
		}
		return strings.TrimSuffix(cwd, "/") + "/" + backing, nil
	}
	dir, last := backing[:i], backing[i+1:]
	if dir == "" {
		return "/" + last, nil
	}
	if !filepath.IsAbs(dir) {
		cwd, err := unix.Getwd()
		if err != nil {
			return "", fmt.Errorf("current directory: %w", err)
		}
		dir = cwd + "/" + dir
	}
	phys, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("directory of %s: %w", backing, err)
	}
	if st, err := os.Stat(phys); err != nil {
		return "", err
	} else if !st.IsDir() {
		return "", fmt.Errorf("directory of %s: %w", backing, syscall.ENOTDIR)
	}
	return strings.TrimSuffix(phys, "/") + "/" + last, nil
}

// NewHeaderFor returns the v3 header of an empty COW file over backing,
// with the backing path made absolute and its size and mtime read.
func NewHeaderFor(backing string, opts CreateOptions) (*Header, error) {
	ss, align := opts.SectorSize, opts.Alignment
	if ss == 0 {
		ss = 512
	}
	if align == 0 {
		align = int64(os.Getpagesize())
	}
	if !isPow2(ss) || ss > maxSectorSize || !isPow2(align) || align > maxAlignment {
		return nil, &Error{Op: OpCreateCOW, Path: backing, Err: fmt.Errorf("sector size %d or alignment %d out of range", ss, align)}
	}
	abs, err := AbsBacking(backing)
	if err != nil {
		return nil, &Error{Op: OpStatBacking, Path: backing, Err: err}
	}
	if len(abs) > pathLenV3-1 {
		return nil, &Error{Op: OpStatBacking, Path: abs, Err: fmt.Errorf("path of %d bytes does not fit the header's %d", len(abs), pathLenV3-1)}
	}
	// Only a block device is opened (for its size): like the C tool and
	// the kernel, a COW file may be made over a backing file its maker
	// cannot read.
	st, err := os.Stat(abs)
	if err != nil {
		return nil, opErr(OpStatBacking, abs, err)
	}
	if st.IsDir() {
		return nil, &Error{Op: OpStatBacking, Path: abs, Err: syscall.EISDIR}
	}
	size := st.Size()
	if isBlockDevice(st) {
		f, err := os.Open(abs)
		if err != nil {
			return nil, opErr(OpStatBacking, abs, err)
		}
		size, err = deviceSize(f, st)
		f.Close()
		if err != nil {
			return nil, opErr(OpStatBacking, abs, err)
		}
	}
	return NewV3(abs, st.ModTime().Unix(), size, ss, align), nil
}

// Create writes an empty v3 COW file at path over backing, byte for byte
// what the C uml_mkcow writes (the data area is a hole). It is written
// under a temporary name and linked into place, so a failure leaves no
// file behind; without opts.Force an existing path is refused (syscall.EEXIST, which is os.ErrExist).
func Create(path, backing string, opts CreateOptions) (*Header, error) {
	h, err := NewHeaderFor(backing, opts)
	if err != nil {
		return nil, err
	}
	hdr, err := h.MarshalBinary()
	if err != nil {
		return nil, &Error{Op: OpCreateCOW, Path: path, Err: err}
	}
	// An existing symbolic link is written through, as the C tool's
	// open(O_TRUNC) does: -f replaces the file it names, not the link.
	if path == "" {
		// EvalSymlinks would make "" the current directory.
		return nil, opErr(OpCreateCOW, path, syscall.ENOENT)
	}
	target := path
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		target = resolved
	}
	old, err := os.Stat(target)
	switch {
	case err == nil:
		if !opts.Force {
			return nil, &Error{Op: OpCreateCOW, Path: path, Err: syscall.EEXIST}
		}
		if bst, err := os.Stat(h.BackingFile); err == nil && os.SameFile(old, bst) {
			return nil, &Error{Op: OpCreateCOW, Path: path, Err: &SameFileError{Path: path, Role: "backing file", What: "COW file"}}
		}
		if !old.Mode().IsRegular() {
			return nil, &Error{Op: OpCreateCOW, Path: path, Err: errors.New("not a regular file")}
		}
	case errors.Is(err, os.ErrNotExist):
		old = nil
	default:
		return nil, opErr(OpCreateCOW, path, err)
	}
	f, err := newTempFile(target)
	if err != nil {
		return nil, opErr(OpCreateCOW, path, err)
	}
	fail := func(err error) (*Header, error) {
		f.discard()
		return nil, opErr(OpCreateCOW, path, err)
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return fail(err)
	}
	if err := f.Truncate(h.DataOffset + h.Size); err != nil {
		return fail(err)
	}
	if old != nil {
		if err := keepAttrs(f.File, old); err != nil {
			return fail(err)
		}
	}
	// Without -f, linking fails if path appeared meanwhile.
	if err := f.commit(opts.Force); err != nil {
		return nil, opErr(OpCreateCOW, path, err)
	}
	return h, nil
}

// createTemp creates a new file with a hidden name beside path, mode 0644
// less the umask (what creat(path, 0644) would give).
func createTemp(path string) (string, *os.File, error) {
	for i := 0; ; i++ {
		tmp := tempName(path)
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return tmp, f, nil
		}
		if !errors.Is(err, os.ErrExist) || i > 10 {
			return "", nil, err
		}
	}
}

// tempName is a fresh hidden name beside path.
func tempName(path string) string {
	dir, base := filepath.Split(path)
	var r [6]byte
	_, _ = rand.Read(r[:])
	return filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(r[:]))
}

// keepAttrs gives f the mode and owner of the file it will replace.
func keepAttrs(f *os.File, old os.FileInfo) error {
	// The owner first: a chown by a non-root user clears the set-id bits
	// the chmod then restores.
	if want, ok := old.Sys().(*syscall.Stat_t); ok {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if have := st.Sys().(*syscall.Stat_t); have.Uid != want.Uid || have.Gid != want.Gid {
			if err := f.Chown(int(want.Uid), int(want.Gid)); err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					err = pe.Err // the path is the new file's, not the user's
				}
				return fmt.Errorf("cannot keep the existing file's owner %d:%d (%w); remove it first to make a new one", want.Uid, want.Gid, err)
			}
		}
	}
	return f.Chmod(old.Mode().Perm() | old.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
}
