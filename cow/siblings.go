//go:build linux

package cow

import (
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Siblings lists the COW files in dirs, other than the files in exclude,
// whose header names backing (the same file, however named). After an
// in-place merge into backing they no longer match it: the backing file's
// mtime changes, so kernels refuse them, and their changes were made on
// top of the old content anyway.
func Siblings(dirs []string, backing string, exclude ...string) ([]string, error) {
	bst, err := os.Stat(backing)
	if err != nil {
		return nil, err
	}
	var skip []os.FileInfo
	for _, e := range exclude {
		if st, err := os.Stat(e); err == nil {
			skip = append(skip, st)
		}
	}
	seen := map[string]bool{}
	var found []string
	buf := make([]byte, MaxHeaderSize)
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return found, err
		}
	entries:
		for _, ent := range ents {
			if !ent.Type().IsRegular() {
				continue
			}
			p := filepath.Join(dir, ent.Name())
			st, err := os.Stat(p)
			if err != nil || os.SameFile(st, bst) || seen[p] {
				continue
			}
			for _, s := range skip {
				if os.SameFile(st, s) {
					continue entries
				}
			}
			h, err := peekHeader(p, buf)
			if err != nil {
				continue
			}
			if h.BackingFile == backing {
				seen[p] = true
				found = append(found, p)
				continue
			}
			if hst, err := os.Stat(h.BackingFile); err == nil && os.SameFile(hst, bst) {
				seen[p] = true
				found = append(found, p)
			}
		}
	}
	sort.Strings(found)
	return found, nil
}

func peekHeader(path string, buf []byte) (*Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return ParseHeader(buf[:n])
}
