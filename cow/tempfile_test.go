package cow

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Both ways of making the new file, unnamed (O_TMPFILE) and with a hidden
// name (file systems without O_TMPFILE), leave only the final name behind,
// on success and on failure, and keep an existing file's mode.
func TestTempFileBothWays(t *testing.T) {
	for _, tmpfile := range []bool{true, false} {
		useTmpfile = tmpfile
		dir := t.TempDir()
		back := filepath.Join(dir, "root_fs")
		if err := os.WriteFile(back, []byte("backing data"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Truncate(back, 1<<20)
		when := time.Unix(1_700_000_000, 0)
		os.Chtimes(back, when, when)
		c := filepath.Join(dir, "a.cow")
		if _, err := Create(c, back, CreateOptions{}); err != nil {
			t.Fatalf("tmpfile %v: %v", tmpfile, err)
		}
		if _, err := Create(c, back, CreateOptions{}); !errors.Is(err, os.ErrExist) {
			t.Fatalf("tmpfile %v: second Create: %v", tmpfile, err)
		}
		os.Chmod(c, 0o600)
		if _, err := Create(c, back, CreateOptions{Force: true}); err != nil {
			t.Fatalf("tmpfile %v: Create -f: %v", tmpfile, err)
		}
		out := filepath.Join(dir, "new.img")
		if err := Merge(context.Background(), c, out, Options{}); err != nil {
			t.Fatalf("tmpfile %v: Merge: %v", tmpfile, err)
		}
		if got, _ := os.ReadFile(out); len(got) != 1<<20 || string(got[:12]) != "backing data" {
			t.Fatalf("tmpfile %v: merged image is wrong", tmpfile)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := Merge(ctx, c, filepath.Join(dir, "never.img"), Options{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("tmpfile %v: cancelled Merge: %v", tmpfile, err)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 3 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("tmpfile %v: directory holds %q, want root_fs, a.cow, new.img", tmpfile, names)
		}
		if st, _ := os.Stat(c); st.Mode().Perm() != 0o600 {
			t.Errorf("tmpfile %v: Create -f made mode %v, want the old 0600", tmpfile, st.Mode().Perm())
		}
	}
	useTmpfile = true
}
