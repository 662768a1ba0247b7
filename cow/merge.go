//go:build linux

package cow

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Options tune a merge.
type Options struct {
	// Backing overrides the backing file named in the header (uml_moo -b),
	// for COW files made inside a chroot or whose backing file moved.
	Backing string
	// Force merges even when a file is in use by a running guest.
	Force bool
	// Progress, if set, is called now and then with the image bytes done.
	Progress func(done, total int64)
}

// MismatchError reports a backing file whose size or mtime differs from
// what the COW header recorded: the COW file was made on another image,
// or the image changed since, and merging would corrupt it. The kernel and
// the C uml_moo refuse too.
type MismatchError struct {
	Field   string // "size" or "mtime"
	Header  int64  // the value in the COW header
	Actual  int64  // the backing file's value
	Backing string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s mismatch: COW header has %d, backing file %s has %d", e.Field, e.Header, e.Backing, e.Actual)
}

// SameFileError reports an output that is one of the inputs.
type SameFileError struct {
	Path string
	Role string // "COW file" or "backing file"
	// What the output is: "new image" (Merge) or "COW file" (Create).
	What string
}

func (e *SameFileError) Error() string {
	what := e.What
	if what == "" {
		what = "new image"
	}
	return fmt.Sprintf("%s %s is the %s itself", what, e.Path, e.Role)
}

// ErrNoBackingPath: the header names no backing file and none was given.
var ErrNoBackingPath = errors.New("COW header names no backing file")

// inputs are a COW file and its checked backing file, opened and locked.
type inputs struct {
	cow      *File
	back     *os.File
	backPath string
	backStat os.FileInfo
}

func (in *inputs) close() {
	if in.back != nil {
		in.back.Close()
	}
	in.cow.Close()
}

// openInputs opens and checks the COW file and its backing file in the
// order the C uml_moo does (so the first complaint is the same), plus the
// in-use checks. forWrite opens the backing file for an in-place merge.
func openInputs(cowPath string, opts Options, forWrite bool) (*inputs, error) {
	// The bitmap is read only once the header's size matched the backing
	// file's: a corrupt size must not make us read gigabytes first.
	c, err := openHeader(cowPath)
	if err != nil {
		return nil, err
	}
	in := &inputs{cow: c}
	fail := func(err error) (*inputs, error) {
		in.close()
		return nil, err
	}
	if !opts.Force {
		// A guest writing this COW file holds a write lock on it. Holding
		// a read lock ourselves keeps one from starting mid-merge.
		if err := checkFree(c.f, "COW file"); err != nil {
			return fail(err)
		}
		if err := holdLock(c.f, "COW file", false); err != nil {
			return fail(err)
		}
	}
	in.backPath = c.BackingFile
	if opts.Backing != "" {
		in.backPath = opts.Backing
	}
	if in.backPath == "" {
		return fail(&Error{Op: OpStatBacking, Path: cowPath, Err: ErrNoBackingPath})
	}
	st, err := os.Stat(in.backPath)
	if err != nil {
		return fail(opErr(OpStatBacking, in.backPath, err))
	}
	if st.IsDir() {
		return fail(&Error{Op: OpStatBacking, Path: in.backPath, Err: syscall.EISDIR})
	}
	in.backStat = st
	if !isBlockDevice(st) && st.Size() != c.Size {
		return fail(&MismatchError{Field: "size", Header: c.Size, Actual: st.Size(), Backing: in.backPath})
	}
	if st.ModTime().Unix() != int64(c.MTime) {
		return fail(&MismatchError{Field: "mtime", Header: int64(c.MTime), Actual: st.ModTime().Unix(), Backing: in.backPath})
	}
	flag := os.O_RDONLY
	if forWrite {
		flag = os.O_RDWR
	}
	if in.back, err = os.OpenFile(in.backPath, flag, 0); err != nil {
		return fail(opErr(OpOpenBacking, in.backPath, err))
	}
	if isBlockDevice(st) {
		size, err := deviceSize(in.back, st)
		if err != nil {
			return fail(opErr(OpStatBacking, in.backPath, err))
		}
		if size != c.Size {
			return fail(&MismatchError{Field: "size", Header: c.Size, Actual: size, Backing: in.backPath})
		}
	}
	if err := c.readBitmap(); err != nil {
		return fail(err)
	}
	if !opts.Force {
		if forWrite {
			// Every guest sharing the backing file holds a read lock; an
			// in-place merge would change the disk under all of them.
			if err := checkFree(in.back, "backing file"); err != nil {
				return fail(err)
			}
			if err := holdLock(in.back, "backing file", true); err != nil {
				return fail(err)
			}
		} else if err := holdLock(in.back, "backing file", false); err != nil {
			// Only a write lock conflicts: something writes the backing
			// file itself, and a copy of it now would be torn.
			return fail(err)
		}
	}
	return in, nil
}

// Merge writes a new image of the COW file's disk: its dirty sectors over
// its backing file. The image goes to a temporary file beside newPath and
// is renamed into place only when complete, keeping an existing newPath's
// mode and owner; a block device newPath is written in place. All-zero
// sectors are left as holes. It refuses when the COW file is in use by a
// running guest unless opts.Force.
func Merge(ctx context.Context, cowPath, newPath string, opts Options) error {
	in, err := openInputs(cowPath, opts, false)
	if err != nil {
		return err
	}
	defer in.close()

	out, err := openOutput(newPath, in)
	if err != nil {
		return err
	}
	m := &merger{in: in, opts: opts, out: out.f, outPath: newPath, outBlock: out.block}
	if err := m.mergeAll(ctx); err != nil {
		out.abort()
		return err
	}
	return out.commit()
}

// MergeInPlace writes the COW file's dirty sectors into its backing file
// and flushes it to disk (uml_moo -d). Every other COW file on that
// backing file becomes invalid (see Siblings). It refuses when the COW
// file or the backing file is in use unless opts.Force.
//
// When it fails or is cancelled part way, the backing file holds some of
// the dirty sectors and gets its old mtime back: only sectors the COW file
// overrides were written, so the COW file over it still shows the same
// disk, and calling MergeInPlace again finishes the merge (with a changed
// mtime the size/mtime check would refuse it).
func MergeInPlace(ctx context.Context, cowPath string, opts Options) error {
	in, err := openInputs(cowPath, opts, true)
	if err != nil {
		return err
	}
	defer in.close()
	m := &merger{in: in, opts: opts, out: in.back, outPath: in.backPath, inPlace: true, outBlock: isBlockDevice(in.backStat)}
	err = m.mergeDirty(ctx)
	if err == nil {
		if err = in.back.Sync(); err != nil {
			err = opErr(OpSync, in.backPath, err)
		}
	}
	if err != nil {
		// A block device's node gets a new mtime from writes too.
		mtime := unix.NsecToTimespec(in.backStat.ModTime().UnixNano())
		omit := unix.Timespec{Nsec: unix.UTIME_OMIT} // keep the atime
		if uerr := unix.UtimesNanoAt(unix.AT_FDCWD, in.backPath, []unix.Timespec{omit, mtime}, 0); uerr != nil {
			return errors.Join(err, opErr(OpWriteData, in.backPath, fmt.Errorf("restoring its mtime: %w", uerr)))
		}
	}
	return err
}

// output is the destination of Merge.
type output struct {
	path  string    // the final name
	tmp   *tempFile // the new file renamed onto path; nil when in place
	f     *os.File
	block bool
	keep  os.FileInfo // the file being replaced, if any
}

func openOutput(newPath string, in *inputs) (*output, error) {
	if newPath == "" {
		// EvalSymlinks would make "" the current directory.
		return nil, opErr(OpCreateOutput, newPath, syscall.ENOENT)
	}
	target := newPath
	if resolved, err := filepath.EvalSymlinks(newPath); err == nil {
		target = resolved // replace the link's target, not the link
	}
	o := &output{path: target}
	st, err := os.Stat(target)
	switch {
	case err == nil:
		if os.SameFile(st, in.backStat) {
			return nil, &Error{Op: OpCreateOutput, Path: newPath, Err: &SameFileError{Path: newPath, Role: "backing file"}}
		}
		if cst, err := in.cow.f.Stat(); err == nil && os.SameFile(st, cst) {
			return nil, &Error{Op: OpCreateOutput, Path: newPath, Err: &SameFileError{Path: newPath, Role: "COW file"}}
		}
		if isBlockDevice(st) {
			f, err := os.OpenFile(target, os.O_WRONLY, 0)
			if err != nil {
				return nil, opErr(OpCreateOutput, newPath, err)
			}
			size, err := deviceSize(f, st)
			if err == nil && size < in.cow.Size {
				err = fmt.Errorf("block device holds %d bytes, the image needs %d", size, in.cow.Size)
			}
			if err != nil {
				f.Close()
				return nil, opErr(OpCreateOutput, newPath, err)
			}
			o.f, o.block = f, true
			return o, nil
		}
		if !st.Mode().IsRegular() {
			return nil, &Error{Op: OpCreateOutput, Path: newPath, Err: errors.New("not a regular file or block device")}
		}
		// Replacing by rename needs only the directory's permission; a
		// write-protected image stays protected, as with the C tool's
		// open(O_TRUNC).
		if err := unix.Faccessat(unix.AT_FDCWD, target, unix.W_OK, unix.AT_EACCESS); err != nil {
			return nil, opErr(OpCreateOutput, newPath, err)
		}
		o.keep = st
	case !errors.Is(err, os.ErrNotExist):
		return nil, opErr(OpCreateOutput, newPath, err)
	}
	if o.tmp, err = newTempFile(target); err != nil {
		return nil, opErr(OpCreateOutput, newPath, err)
	}
	o.f = o.tmp.File
	fail := func(err error) (*output, error) {
		o.abort()
		return nil, opErr(OpCreateOutput, newPath, err)
	}
	if o.keep != nil {
		if err := keepAttrs(o.f, o.keep); err != nil {
			return fail(err)
		}
	}
	// The whole image starts as one hole; only non-zero sectors are written.
	if err := o.f.Truncate(in.cow.Size); err != nil {
		return fail(err)
	}
	return o, nil
}

func (o *output) abort() {
	if o.tmp != nil {
		o.tmp.discard()
		return
	}
	o.f.Close()
}

func (o *output) commit() error {
	if o.tmp == nil {
		err := o.f.Sync() // a device: make the write real before reporting it
		if cerr := o.f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return opErr(OpWriteData, o.path, err)
		}
		return nil
	}
	if err := o.tmp.commit(true); err != nil {
		return opErr(OpCreateOutput, o.path, err)
	}
	return nil
}
