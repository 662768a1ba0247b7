package guest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// CopyTree copies the tree at src over dst, as Netkit copies a lab's
// shared/ and MACHINE/ directories over a guest's root. Directories that
// exist at the destination are entered, through symbolic links too, so an
// image's merged-/usr links (/lib -> usr/lib) stay links and
// MACHINE/lib/systemd/system/x.service lands in /usr/lib/systemd/system;
// their modes are kept. Files and links replace what is there (a link at
// the destination is replaced, not written through). Everything copied
// belongs to root, as the lab author means it inside the guest. A missing
// src is no error.
func CopyTree(src, dst string) error {
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	walkErr := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		switch {
		case d.IsDir():
			if rel == "." {
				return nil
			}
			if st, err := os.Stat(target); err == nil && st.IsDir() {
				return nil
			}
			os.Remove(target)
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				errs = append(errs, err)
				return fs.SkipDir
			}
			os.Lchown(target, 0, 0)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err == nil {
				os.Remove(target)
				err = os.Symlink(link, target)
			}
			if err != nil {
				errs = append(errs, err)
			}
			os.Lchown(target, 0, 0)
		case info.Mode().IsRegular():
			if err := copyFile(path, target, info.Mode().Perm()); err != nil {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, fmt.Errorf("%s: not a file, directory or link; skipped", path))
		}
		return nil
	})
	return errors.Join(append(errs, walkErr)...)
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if st, err := os.Lstat(dst); err == nil && !st.Mode().IsRegular() {
		if st.IsDir() {
			return fmt.Errorf("%s: is a directory, not replaced by file %s", dst, src)
		}
		os.Remove(dst)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	os.Chmod(dst, perm)
	return os.Chown(dst, 0, 0)
}
