package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/cow"
	"github.com/umlutils/umlutils/cow/cowtest"
	"golang.org/x/sys/unix"
)

func moo(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"uml_moo"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{}, {"only.cow"}, {"-d"}, {"-b"}, {"-b", "x"}, {"a", "b", "c"}, {"-d", "a", "b"}, {"-x", "a", "b"}, {"-h"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errs := moo(args...)
			if code != 1 || out != "" || !strings.HasPrefix(errs, "uml_moo usage:\n\tuml_moo [ -b <actual backing file> ] <COW file> <new backing file>\n") ||
				!strings.HasSuffix(errs, "uml_moo supports version 1,2 and 3 COW files.\n") {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
			}
		})
	}
}

type setup struct {
	dir, backing, cow, out string
	sum                    [32]byte
}

func newSetup(t *testing.T, version int) *setup {
	t.Helper()
	s := &setup{dir: t.TempDir()}
	s.backing = filepath.Join(s.dir, "root_fs")
	s.cow = filepath.Join(s.dir, "guest.cow")
	s.out = filepath.Join(s.dir, "new_fs")
	r := rand.New(rand.NewSource(int64(version)))
	img := make([]byte, 2<<20)
	r.Read(img[:512<<10])
	if err := os.WriteFile(s.backing, img, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := cowtest.HeaderFor(version, s.backing)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cowtest.Write(s.cow, h, cowtest.RandomSectors(r, 4096, 512, 0.05, 16, 5)); err != nil {
		t.Fatal(err)
	}
	s.sum = s.backingSum(t)
	return s
}

func (s *setup) backingSum(t *testing.T) [32]byte {
	b, err := os.ReadFile(s.backing)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func (s *setup) patch(t *testing.T, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(s.cow, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// Bad input: a message naming the file and the problem, exit 1, no output
// file, the backing file untouched, in both merge modes.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, s *setup)
		want  []string // substrings of stderr; $COW and $BACKING stand for the paths
	}{
		{"sectorsize 0", func(t *testing.T, s *setup) { s.patch(t, 20, be32(0)) }, []string{"$COW", "sectorsize", "power of two"}},
		{"alignment 0", func(t *testing.T, s *setup) { s.patch(t, 24, be32(0)) }, []string{"$COW", "alignment"}},
		{"unknown version", func(t *testing.T, s *setup) { s.patch(t, 4, be32(7)) }, []string{"$COW", "version 7"}},
		{"not a COW file", func(t *testing.T, s *setup) { s.patch(t, 0, []byte("\x7fELF")) }, []string{"$COW", "not the COW magic"}},
		{"truncated header", func(t *testing.T, s *setup) { os.Truncate(s.cow, 2000) }, []string{"$COW", "v3 header needs 4128 bytes"}},
		{"truncated bitmap", func(t *testing.T, s *setup) { os.Truncate(s.cow, 8192+100) }, []string{"Reading COW bitmap: $COW", "bitmap", "past the end"}},
		{"truncated data", func(t *testing.T, s *setup) { os.Truncate(s.cow, 12288+4096) }, []string{"$COW", "dirty sector", "past the end"}},
		{"size beyond the backing file", func(t *testing.T, s *setup) { s.patch(t, 12, binary.BigEndian.AppendUint64(nil, 4<<20)) },
			[]string{`Size mismatch (4194304 vs 2097152) of COW header vs backing file "$BACKING"`}},
		{"missing backing file", func(t *testing.T, s *setup) { os.Rename(s.backing, s.backing+".gone") }, []string{"Stating backing file: $BACKING: No such file or directory"}},
		{"mtime mismatch", func(t *testing.T, s *setup) {
			when := time.Unix(2_000_000_000, 0)
			os.Chtimes(s.backing, when, when)
		}, []string{"mtime mismatch (", " vs 2000000000) of COW header vs backing file \"$BACKING\""}},
		{"COW in use", func(t *testing.T, s *setup) {
			f, err := os.OpenFile(s.cow, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}); err != nil {
				t.Fatal(err)
			}
		}, []string{"COW file $COW is in use", "--force"}},
		{"missing COW file", func(t *testing.T, s *setup) { os.Remove(s.cow) }, []string{"COW file open: $COW: No such file or directory"}},
		{"COW file is a directory", func(t *testing.T, s *setup) {
			os.Remove(s.cow)
			os.Mkdir(s.cow, 0o755)
		}, []string{"COW file open: $COW: Is a directory"}},
		{"COW file is a FIFO", func(t *testing.T, s *setup) {
			os.Remove(s.cow)
			if err := unix.Mkfifo(s.cow, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"COW file open: $COW: not a regular file or block device"}},
	} {
		for _, inPlace := range []bool{false, true} {
			name := tc.name
			if inPlace {
				name += " -d"
			}
			t.Run(name, func(t *testing.T) {
				s := newSetup(t, 3)
				tc.spoil(t, s)
				sum := s.sum
				if _, err := os.Stat(s.backing); err == nil {
					sum = s.backingSum(t)
				}
				args := []string{s.cow, s.out}
				if inPlace {
					args = []string{"-d", s.cow}
				}
				code, out, errs := moo(args...)
				if code != 1 || out != "" {
					t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
				}
				for _, w := range tc.want {
					w = strings.ReplaceAll(strings.ReplaceAll(w, "$COW", s.cow), "$BACKING", s.backing)
					if !strings.Contains(errs, w) {
						t.Errorf("stderr %q lacks %q", errs, w)
					}
				}
				ents, _ := os.ReadDir(s.dir)
				for _, e := range ents {
					if n := e.Name(); n != "root_fs" && n != "guest.cow" && n != "root_fs.gone" {
						t.Errorf("left behind: %s", n)
					}
				}
				if _, err := os.Stat(s.backing); err == nil && s.backingSum(t) != sum {
					t.Error("backing file changed")
				}
			})
		}
	}
}

func TestOptionsInAnyOrderAndSiblingWarning(t *testing.T) {
	s := newSetup(t, 3)
	moved := filepath.Join(s.dir, "moved_fs")
	if err := os.Rename(s.backing, moved); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := moo("-b", moved, s.cow, s.out); code != 0 {
		t.Fatalf("-b: exit %d: %s", code, errs)
	}
	want, _ := os.ReadFile(s.out)
	sibling := filepath.Join(s.dir, "other.cow")
	if _, err := cow.Create(sibling, moved, cow.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, _, errs := moo("-b", moved, "-d", s.cow)
	if code != 0 {
		t.Fatalf("-b X -d: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "warning: "+sibling+" also uses backing file "+moved) {
		t.Errorf("no warning about %s: %q", sibling, errs)
	}
	if got, _ := os.ReadFile(moved); !bytes.Equal(got, want) {
		t.Fatal("in-place merge differs from the new image")
	}
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, tty: true}
	p.update(1<<20, 1<<30) // small and first: drawn
	p.update(1<<30, 1<<30) // last: always drawn
	p.finish()
	s := b.String()
	if !strings.Contains(s, "  0% 1/1024 MiB") || !strings.Contains(s, "[########################################] 100% 1024/1024 MiB") ||
		!strings.HasSuffix(s, "\r\x1b[K") {
		t.Fatalf("progress output %q", s)
	}
	var quiet bytes.Buffer
	q := newProgress(&quiet) // not a terminal
	q.update(1<<29, 1<<30)
	q.finish()
	if quiet.Len() != 0 {
		t.Fatalf("progress drawn on a non-terminal: %q", quiet.String())
	}
}

// The C tool tells on stdout that it recovers a broken 64-bit v3 header,
// success or not; so do we.
func TestBroken64Notice(t *testing.T) {
	s := newSetup(t, 4)
	const notice = "read_cow_header - broken V3 file with 64-bit layout - recovering content.\n"
	if code, out, errs := moo(s.cow, s.out); code != 0 || out != notice || errs != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	when := time.Unix(2_000_000_000, 0)
	os.Chtimes(s.backing, when, when)
	if code, out, errs := moo("-d", s.cow); code != 1 || out != notice || !strings.Contains(errs, "mtime mismatch") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, out, _ := moo(newSetup(t, 3).cow, s.out); code != 0 || out != "" {
		t.Fatalf("v3: exit %d, stdout %q", code, out)
	}
}

// -b "" (an unset variable in a script) fails like the C tool instead of
// falling back to the header's backing file; so does an empty NEW.
func TestEmptyBackingOption(t *testing.T) {
	s := newSetup(t, 3)
	for _, args := range [][]string{{"-b", "", s.cow, s.out}, {"-d", "-b", "", s.cow}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if code, out, errs := moo(args...); code != 1 || out != "" || !strings.HasPrefix(errs, "Stating backing file: ") {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
			}
		})
	}
	if code, _, errs := moo(s.cow, ""); code != 1 || errs != "Output file open: : No such file or directory\n" {
		t.Errorf("empty NEW: exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(s.out); err == nil {
		t.Error("an output file was written")
	}
	if s.backingSum(t) != s.sum {
		t.Error("backing file changed")
	}
}

// --force merges a COW file a guest holds, loudly: the warning names the
// file and the lock, and the merge succeeds.
func TestForceWarns(t *testing.T) {
	s := newSetup(t, 3)
	f, err := os.OpenFile(s.cow, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := moo("--force", s.cow, s.out)
	if code != 0 || out != "" || !strings.Contains(errs, "WARNING: --force: COW file "+s.cow+" is in use") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, err := os.Stat(s.out); err != nil {
		t.Fatal(err)
	}
}

// An in-place merge of a COW file without dirty sectors writes nothing,
// so the other COW files on the backing file stay valid: no warning.
func TestNoSiblingWarningWhenNothingWritten(t *testing.T) {
	dir := t.TempDir()
	back := filepath.Join(dir, "root_fs")
	if err := os.WriteFile(back, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a.cow"), filepath.Join(dir, "b.cow")
	for _, c := range []string{a, b} {
		if _, err := cow.Create(c, back, cow.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errs := moo("-d", a); code != 0 || out != "" || errs != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
