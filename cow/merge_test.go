package cow_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/cow"
	"github.com/umlutils/umlutils/cow/cowtest"
	"golang.org/x/sys/unix"
)

// makeBacking writes a sparse image of size bytes with random data in a
// few places (and some all-zero data blocks, allocated).
func makeBacking(t testing.TB, path string, size int64, r *rand.Rand) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 8; k++ {
		n := 1 + r.Int63n(min(size/8, 256<<10))
		off := r.Int63n(size - n)
		b := make([]byte, n)
		if k%3 != 0 {
			r.Read(b)
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	// A fixed mtime makes the header's 32-bit mtime unambiguous.
	when := time.Unix(1_700_000_000, 0)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

// reference merges the obvious way, sector by sector.
func reference(t testing.TB, backing string, sectors map[int64][]byte, ss int64) []byte {
	t.Helper()
	img, err := os.ReadFile(backing)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range sectors {
		lo := i * ss
		hi := min(lo+ss, int64(len(img)))
		copy(img[lo:hi], append(d, make([]byte, ss)...)[:hi-lo])
	}
	return img
}

func fileSum(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// allocatedZeroBlocks counts 4 KiB blocks of path that are allocated yet
// all zero: a sparse merge leaves none (a block that shares a non-zero
// sector with another is not counted).
func allocatedZeroBlocks(t testing.TB, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	n := 0
	buf := make([]byte, 4096)
	zero := make([]byte, 4096)
	for off := int64(0); off < st.Size(); {
		d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err != nil {
			break
		}
		h, _ := unix.Seek(int(f.Fd()), d, unix.SEEK_HOLE)
		for p := d; p < h; p += 4096 {
			k, _ := f.ReadAt(buf, p)
			if k > 0 && bytes.Equal(buf[:k], zero[:k]) {
				n++
			}
		}
		off = h
	}
	return n
}

type fixture struct {
	dir, backing, cow string
	sectors           map[int64][]byte
	h                 *cow.Header
}

func newFixture(t testing.TB, version int, size int64, frac float64, seed int64) *fixture {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	fx := &fixture{dir: t.TempDir()}
	fx.backing = filepath.Join(fx.dir, "backing.img")
	fx.cow = filepath.Join(fx.dir, "disk.cow")
	makeBacking(t, fx.backing, size, r)
	h, err := cowtest.HeaderFor(version, fx.backing)
	if err != nil {
		t.Fatal(err)
	}
	fx.sectors = cowtest.RandomSectors(r, (size+511)/512, 512, frac, 64, 7)
	if fx.h, err = cowtest.Write(fx.cow, h, fx.sectors); err != nil {
		t.Fatal(err)
	}
	return fx
}

func TestMergeMatchesReference(t *testing.T) {
	for _, v := range []struct {
		name    string
		version int
		size    int64
	}{
		{"v1", 1, 9 << 20},
		{"v2", 2, 9 << 20},
		{"v3", 3, 9 << 20},
		{"v3 broken 64-bit", 4, 9 << 20},
		{"v3 odd size", 3, 9<<20 + 4096 + 512},
		{"v3 partial last sector", 3, 9<<20 + 100},
		{"v1 size not a multiple of 8 sectors", 1, 9<<20 + 1536},
	} {
		t.Run(v.name, func(t *testing.T) {
			fx := newFixture(t, v.version, v.size, 0.05, int64(v.version))
			want := reference(t, fx.backing, fx.sectors, 512)
			out := filepath.Join(fx.dir, "new.img")
			if err := cow.Merge(context.Background(), fx.cow, out, cow.Options{}); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(out)
			if !bytes.Equal(got, want) {
				t.Fatalf("merged image differs from the reference merge")
			}
			if n := allocatedZeroBlocks(t, out); n != 0 {
				t.Errorf("%d all-zero blocks allocated in the new image", n)
			}
			// In place: the backing file becomes the same image.
			if err := cow.MergeInPlace(context.Background(), fx.cow, cow.Options{}); err != nil {
				t.Fatal(err)
			}
			got, _ = os.ReadFile(fx.backing)
			if !bytes.Equal(got, want) {
				t.Fatalf("in-place merge differs from the reference merge")
			}
		})
	}
}

func TestOpenReportsExtents(t *testing.T) {
	fx := newFixture(t, 3, 4<<20, 0.1, 9)
	c, err := cow.Open(fx.cow)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.DirtySectors(); got != int64(len(fx.sectors)) {
		t.Fatalf("DirtySectors %d, want %d", got, len(fx.sectors))
	}
	seen := 0
	prevEnd := int64(-1)
	c.Extents(func(e cow.Extent) bool {
		if e.Start <= prevEnd || e.Count <= 0 {
			t.Fatalf("extent %+v after end %d", e, prevEnd)
		}
		for i := e.Start; i < e.Start+e.Count; i++ {
			if _, ok := fx.sectors[i]; !ok {
				t.Fatalf("sector %d reported dirty", i)
			}
			seen++
		}
		if _, ok := fx.sectors[e.Start+e.Count]; ok {
			t.Fatalf("extent %+v stops before dirty sector", e)
		}
		prevEnd = e.Start + e.Count
		return true
	})
	if seen != len(fx.sectors) {
		t.Fatalf("extents cover %d sectors, want %d", seen, len(fx.sectors))
	}
}

func ofdLock(t *testing.T, path string, write bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	typ := int16(unix.F_RDLCK)
	if write {
		typ = unix.F_WRLCK
	}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: typ}); err != nil {
		t.Fatal(err)
	}
}

func TestInUse(t *testing.T) {
	ctx := context.Background()
	t.Run("COW file locked for writing refuses both merges", func(t *testing.T) {
		fx := newFixture(t, 3, 1<<20, 0.1, 1)
		ofdLock(t, fx.cow, true)
		out := filepath.Join(fx.dir, "new.img")
		var iu *cow.InUseError
		if err := cow.Merge(ctx, fx.cow, out, cow.Options{}); !errors.As(err, &iu) || iu.Role != "COW file" {
			t.Fatalf("Merge: got %v, want InUseError on the COW file", err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("refused merge left %s", out)
		}
		before := fileSum(t, fx.backing)
		if err := cow.MergeInPlace(ctx, fx.cow, cow.Options{}); !errors.As(err, &iu) {
			t.Fatalf("MergeInPlace: got %v, want InUseError", err)
		}
		if fileSum(t, fx.backing) != before {
			t.Fatal("refused in-place merge changed the backing file")
		}
		if err := cow.Merge(ctx, fx.cow, out, cow.Options{Force: true}); err != nil {
			t.Fatalf("Merge --force: %v", err)
		}
	})
	t.Run("backing file shared by a guest blocks only the in-place merge", func(t *testing.T) {
		fx := newFixture(t, 3, 1<<20, 0.1, 2)
		ofdLock(t, fx.backing, false)
		if l, err := cow.InUse(fx.backing); err != nil || l == nil || l.Write {
			t.Fatalf("InUse(backing) = %v, %v; want a read lock", l, err)
		}
		if err := cow.Merge(ctx, fx.cow, filepath.Join(fx.dir, "new.img"), cow.Options{}); err != nil {
			t.Fatalf("Merge with a shared backing file: %v", err)
		}
		var iu *cow.InUseError
		if err := cow.MergeInPlace(ctx, fx.cow, cow.Options{}); !errors.As(err, &iu) || iu.Role != "backing file" {
			t.Fatalf("MergeInPlace: got %v, want InUseError on the backing file", err)
		}
	})
}

func TestMismatchRefused(t *testing.T) {
	fx := newFixture(t, 3, 1<<20, 0.1, 3)
	out := filepath.Join(fx.dir, "new.img")
	later := time.Unix(1_800_000_000, 0)
	if err := os.Chtimes(fx.backing, later, later); err != nil {
		t.Fatal(err)
	}
	var mm *cow.MismatchError
	if err := cow.Merge(context.Background(), fx.cow, out, cow.Options{}); !errors.As(err, &mm) || mm.Field != "mtime" ||
		mm.Header != 1_700_000_000 || mm.Actual != 1_800_000_000 {
		t.Fatalf("got %v, want an mtime mismatch with both values", err)
	}
	if err := os.Truncate(fx.backing, 2<<20); err != nil {
		t.Fatal(err)
	}
	if err := cow.Merge(context.Background(), fx.cow, out, cow.Options{}); !errors.As(err, &mm) || mm.Field != "size" {
		t.Fatalf("got %v, want a size mismatch", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("refused merge left an output file")
	}
}

func TestMergeOutputHandling(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t, 3, 3<<20, 0.1, 4)
	out := filepath.Join(fx.dir, "new.img")
	if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cow.Merge(ctx, fx.cow, out, cow.Options{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 || st.Size() != 3<<20 {
		t.Fatalf("replaced image: mode %v size %d, want 0600 and 3 MiB", st.Mode(), st.Size())
	}
	var sf *cow.SameFileError
	if err := cow.Merge(ctx, fx.cow, fx.backing, cow.Options{}); !errors.As(err, &sf) {
		t.Fatalf("merge onto the backing file: %v", err)
	}
	if err := cow.Merge(ctx, fx.cow, fx.cow, cow.Options{}); !errors.As(err, &sf) {
		t.Fatalf("merge onto the COW file: %v", err)
	}
	// Cancelled: no output, no temporary file.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	out2 := filepath.Join(fx.dir, "cancelled.img")
	if err := cow.Merge(cctx, fx.cow, out2, cow.Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled merge: %v", err)
	}
	// Cancelled mid-merge (Ctrl-C in uml_moo): the same.
	cctx, cancel = context.WithCancel(ctx)
	defer cancel()
	progressed := false
	stop := func(done, total int64) { progressed = true; cancel() }
	if err := cow.Merge(cctx, fx.cow, out2, cow.Options{Progress: stop}); !errors.Is(err, context.Canceled) || !progressed {
		t.Fatalf("merge cancelled after the first chunk: %v (progress called: %v)", err, progressed)
	}
	ents, _ := os.ReadDir(fx.dir)
	for _, e := range ents {
		if e.Name() != "backing.img" && e.Name() != "disk.cow" && e.Name() != "new.img" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	makeBacking(t, filepath.Join(real, "img"), 3<<20, rand.New(rand.NewSource(5)))
	if err := os.Symlink("img", filepath.Join(real, "img-link")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a.cow")
	h, err := cow.Create(path, filepath.Join(dir, "link", "img-link"), cow.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Directory resolved, last component kept: as the C tool does.
	realPhys, _ := filepath.EvalSymlinks(real)
	if want := filepath.Join(realPhys, "img-link"); h.BackingFile != want {
		t.Fatalf("backing path %q, want %q", h.BackingFile, want)
	}
	c, err := cow.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.FileSize() != h.DataOffset+3<<20 || c.DirtySectors() != 0 || c.Size != 3<<20 || c.MTime != 1_700_000_000 {
		t.Fatalf("new COW: %+v size %d", c.Header, c.FileSize())
	}
	c.Close()
	if _, err := cow.Create(path, filepath.Join(real, "img"), cow.CreateOptions{}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("no -f over an existing file: %v", err)
	}
	if _, err := cow.Create(path, filepath.Join(real, "img"), cow.CreateOptions{Force: true}); err != nil {
		t.Fatalf("-f: %v", err)
	}
	if _, err := cow.Create(filepath.Join(real, "img"), filepath.Join(real, "img"), cow.CreateOptions{Force: true}); err == nil {
		t.Fatal("-f over the backing file itself was accepted")
	}
	if _, err := cow.Create(filepath.Join(dir, "b.cow"), filepath.Join(dir, "missing"), cow.CreateOptions{}); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("missing backing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.cow")); err == nil {
		t.Fatal("failed create left a file")
	}
}

func TestSiblings(t *testing.T) {
	fx := newFixture(t, 3, 1<<20, 0.01, 6)
	other := filepath.Join(fx.dir, "other.cow")
	if _, err := cow.Create(other, fx.backing, cow.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	unrelated := filepath.Join(fx.dir, "notes.txt")
	os.WriteFile(unrelated, []byte("hello"), 0o644)
	got, err := cow.Siblings([]string{fx.dir}, fx.backing, fx.cow)
	if err != nil || len(got) != 1 || got[0] != other {
		t.Fatalf("Siblings = %v, %v; want [%s]", got, err, other)
	}
}

// A size field of 4 TiB over a 1 MiB backing file, in a COW file made
// sparse-large enough to hold its 1 GiB bitmap: the size mismatch is
// reported before the bitmap is read, as the C tool does, instead of
// after allocating and reading a gigabyte of holes.
func TestHugeSizeRefusedBeforeBitmap(t *testing.T) {
	fx := newFixture(t, 3, 1<<20, 0.1, 9)
	f, err := os.OpenFile(fx.cow, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var size [8]byte
	binary.BigEndian.PutUint64(size[:], 1<<42)
	if _, err := f.WriteAt(size[:], 12); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	var mm *cow.MismatchError
	for _, merge := range []func() error{
		func() error {
			return cow.Merge(context.Background(), fx.cow, filepath.Join(fx.dir, "new.img"), cow.Options{})
		},
		func() error { return cow.MergeInPlace(context.Background(), fx.cow, cow.Options{}) },
	} {
		if err := merge(); !errors.As(err, &mm) || mm.Field != "size" || mm.Header != 1<<42 {
			t.Fatalf("got %v, want a size mismatch", err)
		}
	}
	if _, err := cow.ReadHeader(fx.cow); err != nil {
		t.Fatalf("ReadHeader: %v", err)
	}
	runtime.ReadMemStats(&ms)
	if n := ms.TotalAlloc - before; n > 64<<20 {
		t.Errorf("refusing a corrupt size allocated %d MiB", n>>20)
	}
}

// An in-place merge stopped part way gives the backing file its mtime
// back: the COW file over it still shows the same disk, and running the
// merge again finishes it.
func TestMergeInPlaceInterruptedCanBeRerun(t *testing.T) {
	fx := newFixture(t, 3, 4<<20, 0.3, 10)
	want := reference(t, fx.backing, fx.sectors, 512)
	before, err := os.Stat(fx.backing)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	stop := func(done, total int64) { calls++; cancel() }
	if err := cow.MergeInPlace(ctx, fx.cow, cow.Options{Progress: stop}); !errors.Is(err, context.Canceled) || calls == 0 {
		t.Fatalf("cancelled in-place merge: %v (progress calls %d)", err, calls)
	}
	after, err := os.Stat(fx.backing)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("interrupted merge left mtime %v, want %v", after.ModTime(), before.ModTime())
	}
	if got, _ := os.ReadFile(fx.backing); bytes.Equal(got, want) {
		t.Fatal("the merge was not interrupted part way; the test proves nothing")
	}
	out := filepath.Join(fx.dir, "new.img")
	if err := cow.Merge(context.Background(), fx.cow, out, cow.Options{}); err != nil {
		t.Fatalf("merging the COW file over the partly merged backing file: %v", err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Fatal("the COW file over the partly merged backing file shows another disk")
	}
	if err := cow.MergeInPlace(context.Background(), fx.cow, cow.Options{}); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if got, _ := os.ReadFile(fx.backing); !bytes.Equal(got, want) {
		t.Fatal("rerun did not finish the merge")
	}
}
