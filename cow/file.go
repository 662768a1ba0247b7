//go:build linux

package cow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strings"
	"syscall"
)

// Op names the step of working with COW files that failed.
type Op int

// The steps, in the order a merge takes them.
const (
	OpOpenCOW      Op = iota // opening the COW file
	OpReadHeader             // reading or checking its header
	OpStatBacking            // stat of the backing file
	OpOpenBacking            // opening the backing file
	OpCreateOutput           // creating the new image
	OpReadBitmap             // reading the bitmap
	OpReadData               // reading sectors
	OpWriteData              // writing sectors
	OpSync                   // flushing the result to disk
	OpCreateCOW              // creating a new COW file
)

var opNames = [...]string{
	OpOpenCOW:      "open COW file",
	OpReadHeader:   "read COW header of",
	OpStatBacking:  "stat backing file",
	OpOpenBacking:  "open backing file",
	OpCreateOutput: "create",
	OpReadBitmap:   "read COW bitmap of",
	OpReadData:     "read",
	OpWriteData:    "write",
	OpSync:         "sync",
	OpCreateCOW:    "create COW file",
}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op %d", int(o))
}

// Error is a failure of one step on one file. Err is a *HeaderError, an
// *os.PathError's underlying errno, or another typed error of this package.
type Error struct {
	Op   Op
	Path string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Path, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

func opErr(op Op, path string, err error) *Error {
	var pe *os.PathError
	var le *os.LinkError
	if errors.As(err, &pe) {
		err = pe.Err // the path is already in Error
	} else if errors.As(err, &le) {
		err = le.Err
	}
	return &Error{Op: op, Path: path, Err: err}
}

// Extent is a run of sectors: [Start, Start+Count).
type Extent struct {
	Start, Count int64
}

// File is an open COW file with its header and bitmap read.
type File struct {
	Header
	Path   string
	f      *os.File
	size   int64
	bitmap []byte // BitmapBytes() bytes: bit i is byte i/8, bit i%8
}

// Open opens a COW file read-only, parses and validates its header, and
// reads its bitmap. Errors are *Error with Op OpOpenCOW, OpReadHeader or
// OpReadBitmap.
func Open(path string) (*File, error) {
	c, err := openHeader(path)
	if err != nil {
		return nil, err
	}
	if err := c.readBitmap(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ReadHeader reads and validates the header of the COW file at path
// without reading its bitmap.
func ReadHeader(path string) (*Header, error) {
	c, err := openHeader(path)
	if err != nil {
		return nil, err
	}
	c.Close()
	return &c.Header, nil
}

// openHeader opens a COW file read-only and parses and validates its
// header, without reading the bitmap: a merge first checks the header's
// size against the backing file, so that a corrupt size field is reported
// as such instead of making us read (and allocate) a bitmap of gigabytes
// from a sparse file.
func openHeader(path string) (*File, error) {
	// O_NONBLOCK: a FIFO named as the COW file must not hang the open
	// (it is refused below); it changes nothing for files and devices.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, opErr(OpOpenCOW, path, err)
	}
	c, err := loadHeader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

func loadHeader(f *os.File, path string) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, opErr(OpOpenCOW, path, err)
	}
	if st.IsDir() {
		return nil, opErr(OpOpenCOW, path, syscall.EISDIR)
	}
	if !st.Mode().IsRegular() && !isBlockDevice(st) {
		return nil, opErr(OpOpenCOW, path, errors.New("not a regular file or block device"))
	}
	buf := make([]byte, MaxHeaderSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, opErr(OpReadHeader, path, err)
	}
	h, err := ParseHeader(buf[:n])
	if err != nil {
		return nil, opErr(OpReadHeader, path, err)
	}
	if err := h.Validate(st.Size()); err != nil {
		// A bitmap cut short is what the C tool reports as a failed
		// bitmap read; keep its wording for it.
		op := OpReadHeader
		if he := (*HeaderError)(nil); errors.As(err, &he) && he.Field == "bitmap" && errors.Is(err, ErrTruncated) {
			op = OpReadBitmap
		}
		return nil, opErr(op, path, err)
	}
	return &File{Header: *h, Path: path, f: f, size: st.Size()}, nil
}

// readBitmap reads the bitmap and checks that every dirty sector's data
// lies inside the file.
func (c *File) readBitmap() error {
	h, f, path := &c.Header, c.f, c.Path
	c.bitmap = make([]byte, h.BitmapBytes())
	if _, err := f.ReadAt(c.bitmap, h.BitmapOffset); err != nil {
		if err == io.EOF {
			err = &HeaderError{Field: "bitmap", Err: ErrTruncated, Detail: "file ends inside the bitmap"}
		}
		return opErr(OpReadBitmap, path, err)
	}
	// Bits past the last sector (padding of the last byte) mean nothing.
	if r := h.Sectors() % 8; r != 0 {
		c.bitmap[len(c.bitmap)-1] &= byte(1)<<r - 1
	}
	if last, ok := c.lastDirty(); ok {
		end := h.DataOffset + min((last+1)*h.SectorSize, h.Size)
		if end > c.size {
			return opErr(OpReadHeader, path, &HeaderError{Field: "data", Err: ErrTruncated,
				Detail: fmt.Sprintf("dirty sector %d's data ends at byte %d, past the end of the file (%d bytes)", last, end, c.size)})
		}
	}
	return nil
}

// Close closes the file.
func (c *File) Close() error { return c.f.Close() }

// OSFile is the open file (read-only unless opened otherwise).
func (c *File) OSFile() *os.File { return c.f }

// FileSize is the COW file's length in bytes.
func (c *File) FileSize() int64 { return c.size }

// Dirty reports whether sector i is held in the COW file.
func (c *File) Dirty(i int64) bool {
	return i >= 0 && i < c.Sectors() && c.bitmap[i>>3]&(1<<(i&7)) != 0
}

// DirtySectors counts the sectors held in the COW file.
func (c *File) DirtySectors() int64 {
	var n int
	b := c.bitmap
	for len(b) >= 8 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return int64(n)
}

// nextBit returns the first sector >= i whose bit equals set, or Sectors().
func (c *File) nextBit(i int64, set bool) int64 {
	n := c.Sectors()
	var skip byte // a byte with every bit != set
	if !set {
		skip = 0xff
	}
	for i < n {
		if i&7 == 0 {
			// Skip whole words, then whole bytes, that hold no match.
			j := i >> 3
			for j+8 <= int64(len(c.bitmap)) && binary.LittleEndian.Uint64(c.bitmap[j:]) == uint64(skip)*0x0101010101010101 {
				j += 8
			}
			for j < int64(len(c.bitmap)) && c.bitmap[j] == skip {
				j++
			}
			if i = j << 3; i >= n {
				return n
			}
		}
		if (c.bitmap[i>>3]&(1<<(i&7)) != 0) == set {
			return i
		}
		i++
	}
	return n
}

// NextExtent returns the first run of dirty sectors starting at or after
// sector from; ok is false when there is none.
func (c *File) NextExtent(from int64) (e Extent, ok bool) {
	s := c.nextBit(max(from, 0), true)
	if s >= c.Sectors() {
		return Extent{}, false
	}
	return Extent{Start: s, Count: c.nextBit(s, false) - s}, true
}

// Extents calls fn for each run of dirty sectors in order, until fn
// returns false.
func (c *File) Extents(fn func(Extent) bool) {
	for e, ok := c.NextExtent(0); ok; e, ok = c.NextExtent(e.Start + e.Count) {
		if !fn(e) {
			return
		}
	}
}

func (c *File) lastDirty() (int64, bool) {
	for j := len(c.bitmap) - 1; j >= 0; j-- {
		if x := c.bitmap[j]; x != 0 {
			return int64(j)*8 + int64(bits.Len8(x)) - 1, true
		}
	}
	return 0, false
}

// Reason describes e.Err in the words perror(3) would use for an errno
// ("No such file or directory"), so tools keep their C originals' messages.
func (e *Error) Reason() string { return Reason(e.Err) }

// Reason is err's text with an errno written as strerror(3) writes it.
func Reason(err error) string {
	s := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) && errors.Is(err, errno) && s == errno.Error() && s != "" {
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}
