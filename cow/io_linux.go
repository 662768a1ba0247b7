package cow

import (
	"bytes"
	"errors"
	"math"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dataMap walks the data segments of a file with SEEK_DATA/SEEK_HOLE so
// that holes (the bulk of a mostly-empty image) are never read. Queries
// must come with non-decreasing positions; the last answer is cached.
type dataMap struct {
	f      *os.File
	end    int64 // file offsets at or past end are ignored
	noSeek bool  // the file system cannot tell: everything is data
	valid  bool
	from   int64 // the cached answer holds for positions from..stop
	start  int64 // first data at or after from
	stop   int64 // end of that data segment
}

func newDataMap(f *os.File, end int64) *dataMap {
	m := &dataMap{f: f, end: end}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		m.noSeek = true
	}
	return m
}

// next returns the first data segment [s, e) that intersects [pos, limit),
// clipped to it; ok is false when [pos, limit) is all hole.
func (m *dataMap) next(pos, limit int64) (s, e int64, ok bool) {
	limit = min(limit, m.end)
	if pos >= limit {
		return 0, 0, false
	}
	if m.noSeek {
		return pos, limit, true
	}
	if !m.valid || pos < m.from || pos >= m.stop {
		d, err := unix.Seek(int(m.f.Fd()), pos, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO):
			m.start, m.stop = math.MaxInt64, math.MaxInt64
		case err != nil:
			m.noSeek = true
			return pos, limit, true
		default:
			h, err := unix.Seek(int(m.f.Fd()), d, unix.SEEK_HOLE)
			if err != nil {
				h = math.MaxInt64
			}
			m.start, m.stop = d, h
		}
		m.from, m.valid = pos, true
	}
	s, e = max(pos, m.start), min(m.stop, limit)
	return s, e, s < e
}

// preadFull reads len(b) bytes at off; bytes past EOF read as zeros (a
// COW file's data area may end in a hole that was never extended).
func preadFull(f *os.File, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := rawPread(f, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			clear(b)
			return nil
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

func pwriteFull(f *os.File, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := rawPwrite(f, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// zeroSector is compared against with bytes.Equal, which the runtime
// vectorizes; sectors are at most maxSectorSize.
var zeroSector = make([]byte, maxSectorSize)

// nonZeroRuns calls fn for each maximal run of b that is not made of
// all-zero sectors. base is b's offset in the image; sector boundaries
// are multiples of ss in the image. A partial sector at either end of b
// counts as a sector of its own.
func nonZeroRuns(b []byte, base, ss int64, fn func(lo, hi int) error) error {
	runStart := -1
	i := 0
	for i < len(b) {
		// The end of the sector containing image offset base+i.
		next := int((base+int64(i))/ss*ss + ss - base)
		next = min(next, len(b))
		zero := bytes.Equal(b[i:next], zeroSector[:next-i])
		if zero && runStart >= 0 {
			if err := fn(runStart, i); err != nil {
				return err
			}
			runStart = -1
		} else if !zero && runStart < 0 {
			runStart = i
		}
		i = next
	}
	if runStart >= 0 {
		return fn(runStart, len(b))
	}
	return nil
}

// zeroRange makes [off, off+n) of f read as zeros: a punched hole where
// the file system can (no space used, like the sparse new image), written
// zeros elsewhere (block devices, file systems without hole punching).
func zeroRange(f *os.File, off, n int64, canPunch *bool) error {
	if *canPunch {
		err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENODEV) {
			return err
		}
		*canPunch = false
	}
	for n > 0 {
		k := min(n, int64(len(zeroSector)))
		if err := pwriteFull(f, zeroSector[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// deviceSize is the size of a regular file or a block device.
func deviceSize(f *os.File, st os.FileInfo) (int64, error) {
	if st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
		var size uint64
		_, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size)))
		if e != 0 {
			return 0, e
		}
		return int64(size), nil
	}
	return st.Size(), nil
}

func isBlockDevice(st os.FileInfo) bool {
	return st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
}

// rawPread and rawPwrite skip the runtime's syscall bookkeeping: a 1 MiB
// copy through the page cache outlasts the 20 µs after which the runtime
// hands the goroutine's P to another thread, and those hand-offs made a
// dense merge 30-60% slower than cp here. A merge runs one goroutine of
// I/O, so holding the P for the call costs nothing. b must not be empty.
func rawPread(f *os.File, b []byte, off int64) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_PREAD64, f.Fd(), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(off), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func rawPwrite(f *os.File, b []byte, off int64) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_PWRITE64, f.Fd(), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(off), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
