package cow_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/umlutils/umlutils/cow"
)

func mustMarshal(t testing.TB, h *cow.Header) []byte {
	t.Helper()
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return append(b, make([]byte, cow.MaxHeaderSize)...)
}

func TestParseHeaderEveryVersion(t *testing.T) {
	for _, tc := range []struct {
		name       string
		h          cow.Header
		bitmapOff  int64
		bitmapLen  int64
		dataOffset int64
	}{
		// 1 MiB image: 2048 sectors, 256 bitmap bytes.
		{"v1 little-endian", cow.Header{Version: 1, LittleEndian: true}, 280, 256, 1024},
		{"v1 big-endian", cow.Header{Version: 1}, 280, 256, 1024},
		{"v2", cow.Header{Version: 2}, 4120, 256, 4608},
		{"v3", cow.Header{Version: 3, Alignment: 4096}, 8192, 256, 12288},
		{"v3 broken 64-bit", cow.Header{Version: 3, Broken64: true, Alignment: 4096}, 8192, 256, 12288},
		{"v3 align 512", cow.Header{Version: 3, Alignment: 512}, 4608, 256, 5120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.h
			in.BackingFile, in.MTime, in.Size, in.SectorSize = "/srv/images/root_fs", 0x5f000001, 1<<20, 512
			got, err := cow.ParseHeader(mustMarshal(t, &in))
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != in.Version || got.Broken64 != in.Broken64 || got.BackingFile != in.BackingFile ||
				got.MTime != in.MTime || got.Size != in.Size || got.SectorSize != 512 {
				t.Fatalf("round trip: got %+v, want %+v", got, in)
			}
			if in.Version == 1 && got.LittleEndian != in.LittleEndian {
				t.Errorf("v1 byte order lost")
			}
			if got.BitmapOffset != tc.bitmapOff || got.BitmapLen != tc.bitmapLen || got.DataOffset != tc.dataOffset {
				t.Errorf("layout: bitmap %d+%d data %d, want %d+%d data %d", got.BitmapOffset, got.BitmapLen,
					got.DataOffset, tc.bitmapOff, tc.bitmapLen, tc.dataOffset)
			}
		})
	}
}

// The v3 bytes must be exactly what the kernel writes (docs/protocols.md §4).
func TestV3Layout(t *testing.T) {
	h := cow.NewV3("/a/b", 0x01020304, 0x10000, 512, 4096)
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	if len(b) != 4128 || be.Uint32(b) != 0x4f4f4f4d || be.Uint32(b[4:]) != 3 || be.Uint32(b[8:]) != 0x01020304 ||
		be.Uint64(b[12:]) != 0x10000 || be.Uint32(b[20:]) != 512 || be.Uint32(b[24:]) != 4096 ||
		be.Uint32(b[28:]) != 0 || string(b[32:37]) != "/a/b\x00" {
		t.Fatalf("v3 header bytes wrong: % x", b[:40])
	}
	if h.BitmapOffset != 8192 || h.BitmapLen != 16 || h.DataOffset != 12288 {
		t.Fatalf("layout %+v", h)
	}
}

func TestParseHeaderRejects(t *testing.T) {
	base := func() []byte {
		return mustMarshal(t, cow.NewV3("/img", 1, 1<<20, 512, 4096))
	}
	be := binary.BigEndian
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		field  string
		err    error
	}{
		{"empty", func(b []byte) []byte { return nil }, "magic", cow.ErrTruncated},
		{"not a COW file", func(b []byte) []byte { copy(b, "\x7fELF"); return b }, "magic", cow.ErrNotCOW},
		{"unknown version", func(b []byte) []byte { be.PutUint32(b[4:], 4); return b }, "version", cow.ErrVersion},
		{"truncated v3", func(b []byte) []byte { return b[:4000] }, "version", cow.ErrTruncated},
		{"truncated v2", func(b []byte) []byte { be.PutUint32(b[4:], 2); return b[:300] }, "version", cow.ErrTruncated},
		{"sectorsize 0", func(b []byte) []byte { be.PutUint32(b[20:], 0); return b }, "sectorsize", cow.ErrInvalid},
		{"sectorsize 1000", func(b []byte) []byte { be.PutUint32(b[20:], 1000); return b }, "sectorsize", cow.ErrInvalid},
		{"sectorsize huge", func(b []byte) []byte { be.PutUint32(b[20:], 1<<30); return b }, "sectorsize", cow.ErrInvalid},
		{"alignment 0", func(b []byte) []byte { be.PutUint32(b[24:], 0); return b }, "alignment", cow.ErrInvalid},
		{"alignment 3", func(b []byte) []byte { be.PutUint32(b[24:], 3); return b }, "alignment", cow.ErrInvalid},
		{"cow_format 1", func(b []byte) []byte { be.PutUint32(b[28:], 1); return b }, "cow_format", cow.ErrInvalid},
		{"size absurd", func(b []byte) []byte { be.PutUint64(b[12:], 1<<62); return b }, "size", cow.ErrInvalid},
		{"backing not terminated", func(b []byte) []byte {
			for i := 32; i < 4128; i++ {
				b[i] = 'a'
			}
			return b
		}, "backing_file", cow.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cow.ParseHeader(tc.mutate(base()))
			var he *cow.HeaderError
			if !errors.As(err, &he) || he.Field != tc.field || !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want a HeaderError on %s wrapping %v", err, tc.field, tc.err)
			}
		})
	}
}

func TestValidateBitmapInsideFile(t *testing.T) {
	h := cow.NewV3("/img", 1, 1<<30, 512, 4096) // 256 KiB of bitmap at 8192
	if err := h.Validate(8192 + 1000); !errors.Is(err, cow.ErrTruncated) {
		t.Fatalf("cut bitmap: got %v", err)
	}
	if err := h.Validate(h.DataOffset); err != nil {
		t.Fatalf("whole bitmap: %v", err)
	}
}
