// Package cowtest builds COW files of every header version for tests and
// benchmarks: the files kernels of each era would have left behind.
package cowtest

import (
	"fmt"
	"math/rand"
	"os"

	"github.com/umlutils/umlutils/cow"
)

// HeaderFor returns a header of the given version (1, 2, 3, or 4 for the
// broken 64-bit v3) naming backing, with its current size and mtime.
func HeaderFor(version int, backing string) (*cow.Header, error) {
	st, err := os.Stat(backing)
	if err != nil {
		return nil, err
	}
	h := &cow.Header{Version: version, BackingFile: backing, MTime: uint32(st.ModTime().Unix()),
		Size: st.Size(), SectorSize: 512, Alignment: 4096, LittleEndian: true}
	if version == 4 {
		h.Version, h.Broken64 = 3, true
	}
	return h, nil
}

// Write writes a COW file with header h whose sectors (index: data) are
// dirty; the data area is otherwise a hole and the file is sized as the
// kernel sizes it (data offset + image size). It returns the parsed header.
func Write(path string, h *cow.Header, sectors map[int64][]byte) (*cow.Header, error) {
	raw, err := h.MarshalBinary()
	if err != nil {
		return nil, err
	}
	ph, err := cow.ParseHeader(append(raw, make([]byte, cow.MaxHeaderSize)...))
	if err != nil {
		return nil, err
	}
	bitmap := make([]byte, ph.BitmapBytes())
	for i := range sectors {
		if i < 0 || i >= ph.Sectors() {
			return nil, fmt.Errorf("sector %d outside the image's %d", i, ph.Sectors())
		}
		bitmap[i/8] |= 1 << (i % 8)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.WriteAt(raw, 0); err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(bitmap, ph.BitmapOffset); err != nil {
		return nil, err
	}
	for i, d := range sectors {
		if len(d) > int(ph.SectorSize) {
			return nil, fmt.Errorf("sector %d: %d bytes of data", i, len(d))
		}
		if _, err := f.WriteAt(d, ph.DataOffset+i*ph.SectorSize); err != nil {
			return nil, err
		}
	}
	if err := f.Truncate(ph.DataOffset + ph.Size); err != nil {
		return nil, err
	}
	return ph, f.Close()
}

// RandomSectors picks about frac of an image's sectors, in runs of up to
// run sectors, with random data (one in zeroEvery all zeros, if non-zero).
func RandomSectors(r *rand.Rand, sectors int64, ss int, frac float64, run int, zeroEvery int) map[int64][]byte {
	out := map[int64][]byte{}
	want := int64(float64(sectors) * frac)
	for int64(len(out)) < want {
		s := r.Int63n(sectors)
		n := 1 + r.Intn(run)
		for k := int64(0); k < int64(n) && s+k < sectors; k++ {
			d := make([]byte, ss)
			if zeroEvery == 0 || r.Intn(zeroEvery) != 0 {
				r.Read(d)
			}
			out[s+k] = d
		}
	}
	return out
}
