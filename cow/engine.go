//go:build linux

package cow

import (
	"context"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// chunkSize is the unit of I/O: large enough that a dense image costs a
// few thousand system calls per GiB (the C uml_moo makes two per 512-byte
// sector), small enough that the buffer stays in the CPU's cache while the
// kernel copies through it (4 MiB measured 30-100% slower than 1 MiB on a
// dense image here), and a multiple of every sector size a header may hold.
const chunkSize = 1 << 20

// span is a range of image bytes [lo, hi).
type span struct{ lo, hi int64 }

type merger struct {
	in       *inputs
	opts     Options
	out      *os.File
	outPath  string // out's name for messages: the user's, not the temporary one
	outBlock bool   // out cannot hold holes: write zeros too
	inPlace  bool
}

func (m *merger) progress(done, total int64) {
	if m.opts.Progress != nil {
		m.opts.Progress(done, total)
	}
}

// extentCursor hands out the dirty extents overlapping consecutive
// chunks, scanning the bitmap once in total.
type extentCursor struct {
	c    *File
	from int64 // the next sector to search from
	cur  Extent
	ok   bool
	done bool
}

// within appends the dirty byte ranges inside [lo, hi) to dst.
func (x *extentCursor) within(dst []span, lo, hi int64) []span {
	ss := x.c.SectorSize
	for !x.done {
		if !x.ok {
			x.cur, x.ok = x.c.NextExtent(max(x.from, lo/ss))
			if !x.ok {
				x.done = true
				break
			}
		}
		elo, ehi := x.cur.Start*ss, min((x.cur.Start+x.cur.Count)*ss, x.c.Size)
		if elo >= hi {
			break
		}
		dst = append(dst, span{max(elo, lo), min(ehi, hi)})
		if ehi > hi {
			break // continues into the next chunk
		}
		x.ok = false
		x.from = x.cur.Start + x.cur.Count
		lo = ehi
	}
	return dst
}

// union merges two sorted lists of disjoint spans into dst, joining
// overlapping and touching spans.
func union(dst, a, b []span) []span {
	for len(a) > 0 || len(b) > 0 {
		var s span
		if len(b) == 0 || (len(a) > 0 && a[0].lo <= b[0].lo) {
			s, a = a[0], a[1:]
		} else {
			s, b = b[0], b[1:]
		}
		if n := len(dst); n > 0 && s.lo <= dst[n-1].hi {
			dst[n-1].hi = max(dst[n-1].hi, s.hi)
		} else {
			dst = append(dst, s)
		}
	}
	return dst
}

// mergeAll builds the whole image into m.out, chunk by chunk: the backing
// file's data segments (holes are skipped by SEEK_DATA, never read), then
// the dirty sectors over them, then every non-zero sector written. When
// most of a chunk is dirty only the clean parts of the backing file are
// read; otherwise one read of the whole chunk beats many small ones.
func (m *merger) mergeAll(ctx context.Context) error {
	c := m.in.cow
	size, ss := c.Size, c.SectorSize
	back := newDataMap(m.in.back, size)
	dirtyCur := &extentCursor{c: c}
	canClone := !m.outBlock
	buf := make([]byte, chunkSize)
	var dirty, data, pieces []span
	for off := int64(0); off < size; off += chunkSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(off+chunkSize, size)
		dirty = dirtyCur.within(dirty[:0], off, end)
		var dirtyBytes int64
		for _, d := range dirty {
			dirtyBytes += d.hi - d.lo
		}
		data = data[:0]
		for p := off; ; {
			s, e, ok := back.next(p, end)
			if !ok {
				break
			}
			data = append(data, span{s, e})
			p = e
		}
		if len(dirty) == 0 && canClone && len(data) > 0 {
			// A clean chunk on a file system that shares extents (btrfs,
			// XFS): clone the backing file's data segments in the kernel.
			// Nothing is copied and no space is used, holes stay holes.
			if cloned, err := cloneSegments(m.out, m.in.back, data); err != nil {
				return opErr(OpWriteData, m.outPath, err)
			} else if cloned {
				m.progress(end, size)
				continue
			}
			canClone = false // not supported here: copy from now on
		}
		if dirtyBytes*2 < end-off {
			for _, d := range data {
				if err := preadFull(m.in.back, buf[d.lo-off:d.hi-off], d.lo); err != nil {
					return opErr(OpReadData, m.in.backPath, err)
				}
			}
		} else {
			for _, d := range data {
				err := forGaps(d, dirty, func(g span) error {
					return preadFull(m.in.back, buf[g.lo-off:g.hi-off], g.lo)
				})
				if err != nil {
					return opErr(OpReadData, m.in.backPath, err)
				}
			}
		}
		for _, d := range dirty {
			if err := preadFull(c.f, buf[d.lo-off:d.hi-off], c.DataOffset+d.lo); err != nil {
				return opErr(OpReadData, c.Path, err)
			}
		}
		pieces = union(pieces[:0], data, dirty)
		if m.outBlock {
			// A device keeps whatever it held: zeros must be written.
			if err := forGaps(span{off, end}, pieces, func(g span) error {
				clear(buf[g.lo-off : g.hi-off])
				return nil
			}); err != nil {
				return err
			}
			if err := pwriteFull(m.out, buf[:end-off], off); err != nil {
				return opErr(OpWriteData, m.outPath, err)
			}
		} else {
			for _, p := range pieces {
				b := buf[p.lo-off : p.hi-off]
				err := nonZeroRuns(b, p.lo, ss, func(lo, hi int) error {
					return pwriteFull(m.out, b[lo:hi], p.lo+int64(lo))
				})
				if err != nil {
					return opErr(OpWriteData, m.outPath, err)
				}
			}
		}
		m.progress(end, size)
	}
	return nil
}

// forGaps calls fn for the parts of s not covered by the sorted spans.
func forGaps(s span, covered []span, fn func(span) error) error {
	p := s.lo
	for _, c := range covered {
		if c.hi <= p {
			continue
		}
		if c.lo >= s.hi {
			break
		}
		if c.lo > p {
			if err := fn(span{p, c.lo}); err != nil {
				return err
			}
		}
		p = max(p, c.hi)
	}
	if p < s.hi {
		return fn(span{p, s.hi})
	}
	return nil
}

// mergeDirty writes only the dirty sectors into the backing file (the
// in-place merge): non-zero ones as data, all-zero runs as punched holes.
func (m *merger) mergeDirty(ctx context.Context) error {
	c := m.in.cow
	size, ss := c.Size, c.SectorSize
	total := c.DirtySectors() * ss
	canPunch := !m.outBlock
	buf := make([]byte, chunkSize)
	var done int64
	for e, ok := c.NextExtent(0); ok; e, ok = c.NextExtent(e.Start + e.Count) {
		lo, hi := e.Start*ss, min((e.Start+e.Count)*ss, size)
		for p := lo; p < hi; p += chunkSize {
			if err := ctx.Err(); err != nil {
				return err
			}
			b := buf[:min(chunkSize, hi-p)]
			if err := preadFull(c.f, b, c.DataOffset+p); err != nil {
				return opErr(OpReadData, c.Path, err)
			}
			var prev int
			err := nonZeroRuns(b, p, ss, func(rlo, rhi int) error {
				if rlo > prev {
					if err := zeroRange(m.out, p+int64(prev), int64(rlo-prev), &canPunch); err != nil {
						return err
					}
				}
				prev = rhi
				return pwriteFull(m.out, b[rlo:rhi], p+int64(rlo))
			})
			if err == nil && prev < len(b) {
				err = zeroRange(m.out, p+int64(prev), int64(len(b)-prev), &canPunch)
			}
			if err != nil {
				return opErr(OpWriteData, m.in.backPath, err)
			}
			done += int64(len(b))
			m.progress(done, total)
		}
	}
	return nil
}

// cloneSegments shares the backing file's data segments with out at the
// same offsets (FICLONERANGE, what copy_file_range does on file systems
// with shared extents). It reports false when the file system cannot
// (ext4, tmpfs, two file systems); the caller then writes the chunk itself,
// which also makes right whatever was cloned before. Segments from
// SEEK_DATA start on block boundaries; only the last may end off one, at
// the end of both files, which cloning allows.
func cloneSegments(out, back *os.File, data []span) (bool, error) {
	for _, d := range data {
		err := unix.IoctlFileCloneRange(int(out.Fd()), &unix.FileCloneRange{
			Src_fd: int64(back.Fd()), Src_offset: uint64(d.lo), Src_length: uint64(d.hi - d.lo), Dest_offset: uint64(d.lo),
		})
		if err == nil {
			continue
		}
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) ||
			errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
