//go:build linux

package vswitch

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Direction selects which frames a fault applies to, seen from the port.
type Direction int

const (
	// Out: frames the switch delivers to the port (a guest's ping on that
	// port sees the loss and the extra round-trip time).
	Out Direction = iota
	// In: frames arriving from the port.
	In
)

func (d Direction) String() string {
	if d == In {
		return "in"
	}
	return "out"
}

// Faults are a port's injected impairments in one direction.
type Faults struct {
	Loss   float64       // probability 0..1 that a frame is dropped
	Delay  time.Duration // added to every frame
	Jitter time.Duration // uniform extra delay in [0, Jitter)
}

func (f Faults) zero() bool { return f.Loss == 0 && f.Delay == 0 && f.Jitter == 0 }

// maxDelayed and maxDelayedBytes bound what one port's delay line holds;
// more is dropped (DropDelayFull) rather than buffered without limit. The
// byte bound matters: 16384 frames of up to 64 KiB would be 1 GiB per
// line, and a guest can send that fast against a 60 s delay.
const (
	maxDelayed      = 16384
	maxDelayedBytes = 32 << 20
)

type delayed struct {
	due   time.Time
	seq   uint64
	frame []byte
}

type delayHeap []delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// delayLine holds copies of frames until they are due, then hands them,
// in due order, to release on its own goroutine (run, which the creator
// starts).
type delayLine struct {
	mu      sync.Mutex
	q       delayHeap
	bytes   int // sum of the queued frames' lengths
	seq     uint64
	wake    chan struct{}
	stop    chan struct{}
	release func(frames [][]byte)
}

func newDelayLine(release func([][]byte)) *delayLine {
	return &delayLine{wake: make(chan struct{}, 1), stop: make(chan struct{}), release: release}
}

// add queues a copy of frame; false when the line is full.
func (dl *delayLine) add(due time.Time, frame []byte) bool {
	dl.mu.Lock()
	if len(dl.q) >= maxDelayed || dl.bytes+len(frame) > maxDelayedBytes {
		dl.mu.Unlock()
		return false
	}
	dl.bytes += len(frame)
	dl.seq++
	heap.Push(&dl.q, delayed{due: due, seq: dl.seq, frame: append([]byte(nil), frame...)})
	first := dl.q[0].seq == dl.seq
	dl.mu.Unlock()
	if first {
		select {
		case dl.wake <- struct{}{}:
		default:
		}
	}
	return true
}

func (dl *delayLine) close() { close(dl.stop) }

func (dl *delayLine) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due [][]byte
	for {
		dl.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(dl.q) > 0 && !dl.q[0].due.After(now) {
			f := heap.Pop(&dl.q).(delayed).frame
			dl.bytes -= len(f)
			due = append(due, f)
		}
		wait := time.Hour
		if len(dl.q) > 0 {
			wait = dl.q[0].due.Sub(now)
		}
		dl.mu.Unlock()
		if len(due) > 0 {
			dl.release(due)
			continue
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-dl.stop:
			return
		case <-dl.wake:
		case <-timer.C:
		}
	}
}

func (f Faults) lose() bool { return f.Loss > 0 && rand.Float64() < f.Loss }

func (f Faults) due(now time.Time) time.Time {
	d := f.Delay
	if f.Jitter > 0 {
		d += time.Duration(rand.Int64N(int64(f.Jitter)))
	}
	return now.Add(d)
}

// impaired applies the port's faults for one direction to frame and
// reports whether they took it: lost (counted), or queued on the delay
// line to come back later. Caller holds sw.mu.
func (p *Port) impaired(dir Direction, frame []byte) bool {
	f := &p.faults[dir]
	if f.zero() {
		return false
	}
	if f.lose() {
		p.c.Drops[DropLoss]++
		return true
	}
	if f.Delay > 0 || f.Jitter > 0 {
		if p.delay[dir] == nil || !p.delay[dir].add(f.due(time.Now()), frame) {
			p.c.Drops[DropDelayFull]++
		}
		return true
	}
	return false
}

// SetFaults sets port id's impairments in one direction (zero Faults
// clears them).
func (sw *Switch) SetFaults(id int, dir Direction, f Faults) error {
	if f.Loss < 0 || f.Loss > 1 || f.Delay < 0 || f.Jitter < 0 {
		return fmt.Errorf("invalid faults %+v", f)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	p := sw.ports[id]
	if p == nil {
		return ErrNoPort
	}
	p.faults[dir] = f
	if (f.Delay > 0 || f.Jitter > 0) && p.delay[dir] == nil && !p.removed {
		tx := newTxContext(batchSize)
		var dl *delayLine
		if dir == Out {
			dl = newDelayLine(func(frames [][]byte) { sw.releaseOut(tx, p, frames) })
		} else {
			dl = newDelayLine(func(frames [][]byte) { sw.releaseIn(tx, p, frames) })
		}
		if !sw.spawnLocked(dl.run) {
			return ErrStopping
		}
		p.delay[dir] = dl
	}
	return nil
}

// ClearPort removes every fault from a port and brings it up.
func (sw *Switch) ClearPort(id int) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	p := sw.ports[id]
	if p == nil {
		return ErrNoPort
	}
	p.down, p.shut, p.violated = false, false, false
	p.faults = [2]Faults{}
	return nil
}

// releaseOut sends delayed frames to p.
func (sw *Switch) releaseOut(tx *txContext, p *Port, frames [][]byte) {
	sw.mu.Lock()
	if p.removed {
		sw.mu.Unlock()
		return
	}
	for _, f := range frames {
		if p.down {
			p.c.Drops[DropDown]++
			continue
		}
		p.c.TxFrames++
		p.c.TxBytes += uint64(len(f))
		tx.items = append(tx.items, txItem{p: p, frame: f})
	}
	sw.mu.Unlock()
	sw.transmit(tx)
}

// releaseIn forwards delayed frames that arrived from p.
func (sw *Switch) releaseIn(tx *txContext, p *Port, frames [][]byte) {
	sw.mu.Lock()
	if p.removed {
		sw.mu.Unlock()
		return
	}
	now := sw.now()
	for _, f := range frames {
		sw.forward(tx, p, f, now)
	}
	sw.mu.Unlock()
	sw.transmit(tx)
}
