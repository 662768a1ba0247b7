package packaging

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Stage materialises entries under dest as they will lie on the installed
// system: files from the project tree at root or from bin (the built
// binaries), man pages gzipped, symlinks and directories made. Modes are set
// explicitly so the result does not depend on the caller's umask.
func Stage(es []Entry, root, bin, dest string) error {
	for _, e := range es {
		target := filepath.Join(dest, filepath.FromSlash(e.Dst))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		switch e.Kind {
		case Dir:
			if err := os.MkdirAll(target, e.Mode); err != nil {
				return err
			}
			if err := os.Chmod(target, e.Mode); err != nil {
				return err
			}
		case Symlink:
			_ = os.Remove(target)
			if err := os.Symlink(e.Src, target); err != nil {
				return err
			}
		default:
			src := filepath.Join(root, e.Src)
			if e.Binary {
				src = filepath.Join(bin, e.Src)
			}
			if err := copyFile(src, target, e.Mode, e.Gzip); err != nil {
				return fmt.Errorf("staging %s: %w", e.Dst, err)
			}
		}
	}
	return nil
}

// copyFile writes src to dst through a temporary file, so a failure leaves
// no partial file behind. Gzip output carries no name or time stamp, so the
// same page always compresses to the same bytes.
func copyFile(src, dst string, mode os.FileMode, gz bool) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".stage-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if gz {
		zw, e := gzip.NewWriterLevel(tmp, gzip.BestCompression)
		if e != nil {
			return e
		}
		if _, err = io.Copy(zw, in); err != nil {
			return err
		}
		if err = zw.Close(); err != nil {
			return err
		}
	} else if _, err = io.Copy(tmp, in); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
