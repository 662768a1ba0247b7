//go:build linux

// Package cow reads, writes and merges User-Mode Linux copy-on-write disk
// files, the files behind `ubdN=COW,BACKING`.
//
// A COW file starts with a header naming its backing file, then a bitmap
// with one bit per sector (set: the sector lives in the COW file), then the
// sectors themselves at their image offset past the data offset. Every
// header version a kernel ever wrote is read: v1, v2, v3 and the "broken"
// v3 that 64-bit builds before 2006 wrote without packing. New files are
// always v3, byte for byte what the kernel and the C uml_mkcow write.
//
// The package is what uml_moo and uml_mkcow are built on, and usable by a
// lab orchestrator directly: Open gives the header, the dirty-sector count
// and the dirty extents; Merge and MergeInPlace fold a COW file into an
// image; Create writes an empty COW file; InUse tells whether a running
// UML holds a file open.
//
// Linux only. The formats are in docs/protocols.md §4.
package cow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Magic is "MOOO" (0x4f4f4f4d); v2 and v3 store it big-endian, v1 in the
// writing host's order.
const Magic = 0x4f4f4f4d

// Header sizes as the C structures lay them out (docs/protocols.md §4).
const (
	headerV1Size       = 280  // packed: magic, version, backing[256], mtime u32, size u64, sectorsize i32
	headerV2Size       = 4120 // packed: magic, version, backing[4096], mtime, size, sectorsize
	headerV3Size       = 4128 // packed: magic, version, mtime, size, sectorsize, alignment, cow_format, backing[4096]
	headerV3BrokenSize = 4136 // unpacked 64-bit layout: 4 bytes of padding after mtime, struct padded to 8
	pathLenV1          = 256
	pathLenV3          = 4096

	// MaxHeaderSize is enough bytes to parse any header version.
	MaxHeaderSize = headerV3BrokenSize
)

// Bounds that keep a corrupt header from making arithmetic overflow or a
// bitmap allocation explode; kernels only ever wrote 512-byte sectors and
// page-size alignment.
const (
	maxSectorSize = 1 << 20
	maxAlignment  = 1 << 20
	maxImageSize  = 1 << 56
)

// Sentinel errors a HeaderError wraps; test with errors.Is.
var (
	// ErrNotCOW: the magic number is not "MOOO" in either byte order.
	ErrNotCOW = errors.New("not a COW file")
	// ErrTruncated: the file ends inside the header or the bitmap.
	ErrTruncated = errors.New("truncated")
	// ErrVersion: a version no kernel wrote.
	ErrVersion = errors.New("unknown COW version")
	// ErrInvalid: a field holds a value no kernel wrote.
	ErrInvalid = errors.New("invalid value")
)

// HeaderError says which header field is wrong and why.
type HeaderError struct {
	Field  string // magic, version, sectorsize, alignment, cow_format, backing_file, size, bitmap, data
	Detail string // human-readable problem, e.g. "0 is not a power of two"
	Err    error  // one of the sentinel errors above
}

func (e *HeaderError) Error() string {
	return fmt.Sprintf("%s: %s", e.Field, e.Detail)
}

func (e *HeaderError) Unwrap() error { return e.Err }

func headerErr(field string, sentinel error, format string, args ...any) *HeaderError {
	return &HeaderError{Field: field, Err: sentinel, Detail: fmt.Sprintf(format, args...)}
}

// Header is a parsed COW header with the layout values derived from it.
type Header struct {
	// Version is 1, 2 or 3.
	Version int
	// Broken64 marks a v3 header written unpacked by a pre-2006 64-bit
	// build: detected by the packed reading's backing path starting with
	// four zero bytes (where the shifted cow_format lands).
	Broken64 bool
	// LittleEndian is set for v1 headers written by a little-endian host
	// (v1 fields are in the writer's order; v2 and v3 are big-endian).
	LittleEndian bool
	// BackingFile is the path stored in the header.
	BackingFile string
	// MTime is the backing file's modification time in seconds, as a
	// 32-bit value in every version (kernels compare it with st_mtime).
	MTime uint32
	// Size is the image size in bytes (the backing file's size).
	Size int64
	// SectorSize is the size of one bitmap-tracked sector (512 in practice).
	SectorSize int64
	// Alignment of the bitmap and data areas (v3; sectorsize for v1, v2).
	Alignment int64
	// CowFormat is 0 (a bitmap) in every file ever written; v3 only.
	CowFormat uint32

	// BitmapOffset is where the bitmap starts in the file.
	BitmapOffset int64
	// BitmapLen is the bitmap length the version's formula gives; v1 and v2
	// round it down ("(size + ss - 1) / (8 * ss)"), see BitmapBytes.
	BitmapLen int64
	// DataOffset is where sector 0's data would be: sector i lives at
	// DataOffset + i*SectorSize.
	DataOffset int64
}

// Sectors is the number of sectors in the image, counting a trailing
// partial sector.
func (h *Header) Sectors() int64 { return (h.Size + h.SectorSize - 1) / h.SectorSize }

// BitmapBytes is how many bitmap bytes cover every sector: ceil(sectors/8).
// For v3 that equals BitmapLen; v1 and v2's formula can be a byte or so
// short when the size is not a multiple of 8 sectors, and the bits of the
// last sectors then lie in the bytes right after it (still before the data).
func (h *Header) BitmapBytes() int64 { return (h.Sectors() + 7) / 8 }

func roundUp(x, align int64) int64 { return (x + align - 1) / align * align }

func isPow2(x int64) bool { return x > 0 && x&(x-1) == 0 }

// cString returns the NUL-terminated string at the start of b.
func cString(field string, b []byte) (string, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", headerErr(field, ErrInvalid, "path of %d bytes is not NUL-terminated", len(b))
	}
	return string(b[:i]), nil
}

// ParseHeader parses and checks the header at the start of b, which must
// hold at least the header (MaxHeaderSize bytes is always enough). It
// checks every field on its own; Validate checks the layout against the
// file's size.
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < 8 {
		return nil, headerErr("magic", ErrTruncated, "header is %d bytes, shorter than magic and version", len(b))
	}
	var order binary.ByteOrder
	switch {
	case binary.BigEndian.Uint32(b) == Magic:
		order = binary.BigEndian
	case binary.LittleEndian.Uint32(b) == Magic:
		order = binary.LittleEndian
	default:
		return nil, headerErr("magic", ErrNotCOW, "%#08x is not the COW magic %#08x (\"MOOO\")", binary.BigEndian.Uint32(b), uint32(Magic))
	}
	h := &Header{}
	version := order.Uint32(b[4:])
	var ss uint32
	var size uint64
	var path []byte
	need := func(n int, what string) error {
		if len(b) < n {
			return headerErr("version", ErrTruncated, "%s header needs %d bytes, file has %d", what, n, len(b))
		}
		return nil
	}
	switch version {
	case 1:
		if err := need(headerV1Size, "v1"); err != nil {
			return nil, err
		}
		// v1 fields are in the writing host's byte order; the magic tells it.
		h.Version, h.LittleEndian = 1, order == binary.LittleEndian
		path = b[8 : 8+pathLenV1]
		h.MTime = order.Uint32(b[264:])
		size = order.Uint64(b[268:])
		ss = order.Uint32(b[276:])
		h.BitmapOffset = headerV1Size
	case 2:
		if err := need(headerV2Size, "v2"); err != nil {
			return nil, err
		}
		h.Version = 2
		path = b[8 : 8+pathLenV3]
		h.MTime = binary.BigEndian.Uint32(b[4104:])
		size = binary.BigEndian.Uint64(b[4108:])
		ss = binary.BigEndian.Uint32(b[4116:])
		h.BitmapOffset = headerV2Size
	case 3:
		if err := need(headerV3Size, "v3"); err != nil {
			return nil, err
		}
		h.Version = 3
		// Broken 64-bit layout: mtime was an 8-byte field holding a
		// big-endian 32-bit value in its first four bytes, which moved
		// every later field 4 bytes on; cow_format (always 0) then lands
		// where the packed layout's backing path starts.
		shift, hdrSize := 0, int64(headerV3Size)
		if binary.BigEndian.Uint32(b[32:]) == 0 {
			if err := need(headerV3BrokenSize-4, "broken 64-bit v3"); err != nil {
				return nil, err
			}
			h.Broken64, shift, hdrSize = true, 4, headerV3BrokenSize
		}
		be := binary.BigEndian
		h.MTime = be.Uint32(b[8:])
		size = be.Uint64(b[12+shift:])
		ss = be.Uint32(b[20+shift:])
		h.Alignment = int64(be.Uint32(b[24+shift:]))
		h.CowFormat = be.Uint32(b[28+shift:])
		path = b[32+shift : 32+shift+pathLenV3]
		if h.Alignment == 0 || !isPow2(h.Alignment) || h.Alignment > maxAlignment {
			return nil, headerErr("alignment", ErrInvalid, "%d is not a power of two up to %d", h.Alignment, maxAlignment)
		}
		if h.CowFormat != 0 {
			return nil, headerErr("cow_format", ErrInvalid, "%d is not 0 (bitmap), the only format kernels write", h.CowFormat)
		}
		h.BitmapOffset = roundUp(hdrSize, h.Alignment)
	default:
		return nil, headerErr("version", ErrVersion, "version %d is not 1, 2 or 3", version)
	}
	if ss == 0 || !isPow2(int64(ss)) || ss < 512 || ss > maxSectorSize {
		return nil, headerErr("sectorsize", ErrInvalid, "%d is not a power of two from 512 to %d", int32(ss), maxSectorSize)
	}
	h.SectorSize = int64(ss)
	if size > maxImageSize {
		return nil, headerErr("size", ErrInvalid, "%d bytes is beyond any disk image", size)
	}
	h.Size = int64(size)
	var err error
	if h.BackingFile, err = cString("backing_file", path); err != nil {
		return nil, err
	}
	if h.Version < 3 {
		// The v1/v2 formula (sic): it rounds down for sizes that are not
		// a multiple of 8 sectors. Kernels and uml_moo use it; so do we.
		h.Alignment = h.SectorSize
		h.BitmapLen = (h.Size + h.SectorSize - 1) / (8 * h.SectorSize)
	} else {
		h.BitmapLen = h.BitmapBytes()
	}
	h.DataOffset = roundUp(h.BitmapOffset+h.BitmapLen, h.Alignment)
	return h, nil
}

// Validate checks that the bitmap lies inside a COW file of fileSize bytes
// and, for v1 and v2, that the bits past the formula's bitmap length do
// not run into the data area.
func (h *Header) Validate(fileSize int64) error {
	end := h.BitmapOffset + h.BitmapBytes()
	if h.BitmapBytes() > h.BitmapLen && end > h.DataOffset {
		return headerErr("bitmap", ErrInvalid, "bits for %d sectors run past the data offset %d", h.Sectors(), h.DataOffset)
	}
	if end > fileSize {
		return headerErr("bitmap", ErrTruncated, "bitmap ends at byte %d, past the end of the file (%d bytes)", end, fileSize)
	}
	return nil
}

// MarshalBinary encodes the header in its version's layout (v1 in the
// byte order LittleEndian says). Layout fields (offsets) are not stored;
// they follow from the others.
func (h *Header) MarshalBinary() ([]byte, error) {
	if h.Size < 0 || h.SectorSize <= 0 || h.SectorSize > 1<<31-1 {
		return nil, headerErr("sectorsize", ErrInvalid, "%d is out of range", h.SectorSize)
	}
	put := func(b []byte, at int, s string, n int) error {
		if len(s) > n-1 {
			return headerErr("backing_file", ErrInvalid, "path of %d bytes does not fit in %d", len(s), n-1)
		}
		copy(b[at:at+n], s)
		return nil
	}
	switch h.Version {
	case 1, 2:
		// Same fields, after a 256-byte (v1) or 4096-byte (v2) path; v1 in
		// its writer's byte order, v2 big-endian.
		var o binary.ByteOrder = binary.BigEndian
		plen, size := pathLenV3, headerV2Size
		if h.Version == 1 {
			plen, size = pathLenV1, headerV1Size
			if h.LittleEndian {
				o = binary.LittleEndian
			}
		}
		b := make([]byte, size)
		o.PutUint32(b, Magic)
		o.PutUint32(b[4:], uint32(h.Version))
		if err := put(b, 8, h.BackingFile, plen); err != nil {
			return nil, err
		}
		at := 8 + plen
		o.PutUint32(b[at:], h.MTime)
		o.PutUint64(b[at+4:], uint64(h.Size))
		o.PutUint32(b[at+12:], uint32(h.SectorSize))
		return b, nil
	case 3:
		if !h.Broken64 && h.BackingFile == "" {
			// Four zero bytes where the packed path starts are how
			// kernels (and ParseHeader) tell the broken layout.
			return nil, headerErr("backing_file", ErrInvalid, "an empty path in a packed v3 header reads as the broken 64-bit layout")
		}
		// The broken 64-bit layout is the packed one with every field
		// after mtime 4 bytes later.
		be, shift, size := binary.BigEndian, 0, headerV3Size
		if h.Broken64 {
			shift, size = 4, headerV3BrokenSize
		}
		b := make([]byte, size)
		be.PutUint32(b, Magic)
		be.PutUint32(b[4:], 3)
		be.PutUint32(b[8:], h.MTime)
		be.PutUint64(b[12+shift:], uint64(h.Size))
		be.PutUint32(b[20+shift:], uint32(h.SectorSize))
		be.PutUint32(b[24+shift:], uint32(h.Alignment))
		be.PutUint32(b[28+shift:], h.CowFormat)
		if err := put(b, 32+shift, h.BackingFile, pathLenV3); err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, headerErr("version", ErrVersion, "version %d is not 1, 2 or 3", h.Version)
}

// NewV3 returns the v3 header the kernel and uml_mkcow write for an image
// of size bytes whose backing file (an absolute path) has mtime seconds.
func NewV3(backing string, mtime int64, size, sectorSize, alignment int64) *Header {
	h := &Header{
		Version: 3, BackingFile: backing, MTime: uint32(mtime), Size: size,
		SectorSize: sectorSize, Alignment: alignment,
		BitmapOffset: roundUp(headerV3Size, alignment),
	}
	h.BitmapLen = h.BitmapBytes()
	h.DataOffset = roundUp(h.BitmapOffset+h.BitmapLen, alignment)
	return h
}
