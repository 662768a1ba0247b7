package cow_test

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/umlutils/umlutils/cow"
	"github.com/umlutils/umlutils/cow/cowtest"
)

// benchFixture: an image of size bytes, dense (all random data) or mostly
// holes, with frac of its sectors dirty in runs of 8 (guest fs blocks).
func benchFixture(b *testing.B, size int64, dense bool, frac float64) *fixture {
	b.Helper()
	r := rand.New(rand.NewSource(1))
	fx := &fixture{dir: b.TempDir()}
	fx.backing = filepath.Join(fx.dir, "backing.img")
	fx.cow = filepath.Join(fx.dir, "disk.cow")
	if dense {
		f, err := os.Create(fx.backing)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		for off := int64(0); off < size; off += int64(len(buf)) {
			r.Read(buf)
			f.Write(buf)
		}
		f.Close()
		when := time.Unix(1_700_000_000, 0)
		os.Chtimes(fx.backing, when, when)
	} else {
		makeBacking(b, fx.backing, size, r)
	}
	h, err := cowtest.HeaderFor(3, fx.backing)
	if err != nil {
		b.Fatal(err)
	}
	sectors := map[int64][]byte{}
	for n := int64(float64(size/512) * frac / 8); int64(len(sectors)) < n*8; {
		g := r.Int63n(size / 4096)
		for k := int64(0); k < 8; k++ {
			d := make([]byte, 512)
			r.Read(d)
			sectors[g*8+k] = d
		}
	}
	if fx.h, err = cowtest.Write(fx.cow, h, sectors); err != nil {
		b.Fatal(err)
	}
	return fx
}

func benchMerge(b *testing.B, fx *fixture) {
	out := filepath.Join(fx.dir, "new.img")
	b.SetBytes(fx.h.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := cow.Merge(context.Background(), fx.cow, out, cow.Options{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(out) // replacing a file costs ext4 an early flush (auto_da_alloc)
		b.StartTimer()
	}
}

// 256 MiB of random data, 2% dirty: bound by copying through the page cache.
func BenchmarkMergeDense(b *testing.B) { benchMerge(b, benchFixture(b, 256<<20, true, 0.02)) }

// 2 GiB mostly holes, 1% dirty: bound by the dirty extents alone.
func BenchmarkMergeMostlyEmpty(b *testing.B) {
	benchMerge(b, benchFixture(b, 2<<30, false, 0.01))
}

// In place into a 2 GiB mostly-empty image, 1% dirty, fsync included.
func BenchmarkMergeInPlace(b *testing.B) {
	fx := benchFixture(b, 2<<30, false, 0.01)
	when := time.Unix(1_700_000_000, 0)
	b.SetBytes(fx.h.Size / 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := cow.MergeInPlace(context.Background(), fx.cow, cow.Options{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Chtimes(fx.backing, when, when) // the merge changed it; the COW header still names the old one
		b.StartTimer()
	}
}

// Walking the extents of a 8 GiB image's bitmap with 1% dirty.
func BenchmarkExtents(b *testing.B) {
	fx := benchFixture(b, 8<<30, false, 0.01)
	c, err := cow.Open(fx.cow)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		c.Extents(func(cow.Extent) bool { n++; return true })
	}
}

func BenchmarkParseHeader(b *testing.B) {
	raw, _ := cow.NewV3("/srv/images/root_fs", 1, 8<<30, 512, 4096).MarshalBinary()
	for i := 0; i < b.N; i++ {
		if _, err := cow.ParseHeader(raw); err != nil {
			b.Fatal(err)
		}
	}
}
