package cow_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/umlutils/umlutils/cow"
)

// FuzzParseHeader: no input panics the parser; what it accepts is
// self-consistent and survives a round trip through MarshalBinary.
func FuzzParseHeader(f *testing.F) {
	for _, h := range []*cow.Header{
		{Version: 1, LittleEndian: true, BackingFile: "/b", Size: 1 << 20, SectorSize: 512},
		{Version: 2, BackingFile: "/b", Size: 1 << 20, SectorSize: 512},
		cow.NewV3("/b", 7, 1<<20, 512, 4096),
		{Version: 3, Broken64: true, BackingFile: "/b", Size: 1 << 20, SectorSize: 512, Alignment: 4096},
	} {
		b, err := h.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := cow.ParseHeader(data)
		if err != nil {
			var he *cow.HeaderError
			if !errors.As(err, &he) || he.Field == "" {
				t.Fatalf("error %v is no HeaderError naming a field", err)
			}
			return
		}
		if h.SectorSize < 512 || h.SectorSize&(h.SectorSize-1) != 0 || h.Alignment <= 0 ||
			h.DataOffset < h.BitmapOffset+h.BitmapLen || h.DataOffset%h.Alignment != 0 {
			t.Fatalf("inconsistent header accepted: %+v", h)
		}
		_ = h.Validate(int64(len(data)))
		b, err := h.MarshalBinary()
		if h.Version == 3 && !h.Broken64 && h.BackingFile == "" {
			// A packed v3 path starting with NUL and garbage: readable
			// (uml_moo -b names the backing file), but not writable, as
			// four zero bytes there mean the broken layout.
			if err == nil {
				t.Fatal("an empty path in a packed v3 header marshalled")
			}
			return
		}
		if err != nil {
			t.Fatalf("accepted header does not marshal: %v", err)
		}
		h2, err := cow.ParseHeader(append(b, make([]byte, cow.MaxHeaderSize)...))
		if err != nil || *h2 != *h {
			t.Fatalf("round trip: %+v, %v; want %+v", h2, err, h)
		}
	})
}

// FuzzOpen: a whole file (header, bitmap, data) never panics Open, and
// the extents it reports add up to its dirty-sector count.
func FuzzOpen(f *testing.F) {
	h := cow.NewV3("/b", 7, 64<<10, 512, 4096)
	b, _ := h.MarshalBinary()
	full := append(b, make([]byte, int(h.DataOffset)-len(b))...)
	full[h.BitmapOffset] = 0x5a
	full[h.BitmapOffset+15] = 0x81
	f.Add(full)
	f.Add(full[:h.BitmapOffset+3])
	path := filepath.Join(f.TempDir(), "fuzz.cow")
	f.Fuzz(func(t *testing.T, data []byte) {
		// A fresh file each time: truncating one that holds data makes
		// ext4 flush it on close (auto_da_alloc), seconds per input on a
		// busy disk.
		os.Remove(path)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := cow.Open(path)
		if err != nil {
			return
		}
		defer c.Close()
		var n int64
		c.Extents(func(e cow.Extent) bool {
			if e.Count <= 0 || e.Start+e.Count > c.Sectors() {
				t.Fatalf("bad extent %+v of %d sectors", e, c.Sectors())
			}
			n += e.Count
			return true
		})
		if n != c.DirtySectors() {
			t.Fatalf("extents cover %d sectors, DirtySectors says %d", n, c.DirtySectors())
		}
	})
}
