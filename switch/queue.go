//go:build linux

package vswitch

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The forwarding path never waits for a consumer: events and capture
// records go into bounded queues that goroutines drain without the switch
// lock. A consumer that stalls (a suspended tcpdump on a FIFO, a terminal
// under scroll lock behind OnEvent) loses records, counted, never frames.

// maxQueuedEvents bounds the events waiting for OnEvent.
const maxQueuedEvents = 4096

// queuedEvent is an Event as queued: no allocation per MAC learned.
type queuedEvent struct {
	kind      EventKind
	port      int
	transport Transport
	action    SecurityAction
	mac       [6]byte
	oldPort   int
	err       error
	n         uint64
}

// eventQueue hands events to Config.OnEvent on its own goroutine, in the
// order they happened.
type eventQueue struct {
	mu      sync.Mutex
	q       []queuedEvent // ring
	head, n int
	dropped atomic.Uint64
	wake    chan struct{}
}

func newEventQueue() *eventQueue {
	return &eventQueue{q: make([]queuedEvent, maxQueuedEvents), wake: make(chan struct{}, 1)}
}

// put queues e, or counts it dropped when the queue is full. It never
// blocks and may be called with the switch lock held.
func (q *eventQueue) put(e queuedEvent) {
	q.mu.Lock()
	if q.n == len(q.q) {
		q.mu.Unlock()
		q.dropped.Add(1)
		return
	}
	q.q[(q.head+q.n)%len(q.q)] = e
	q.n++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take moves what is queued into buf.
func (q *eventQueue) take(buf []queuedEvent) []queuedEvent {
	q.mu.Lock()
	for ; q.n > 0; q.n-- {
		buf = append(buf, q.q[q.head])
		q.q[q.head] = queuedEvent{}
		q.head = (q.head + 1) % len(q.q)
	}
	q.mu.Unlock()
	return buf
}

// dispatch calls fn for every event until stop is closed, then for what is
// left.
func (q *eventQueue) dispatch(stop <-chan struct{}, fn func(Event)) {
	var buf []queuedEvent
	deliver := func() {
		buf = q.take(buf[:0])
		for _, e := range buf {
			ev := Event{Kind: e.kind, Port: e.port, Transport: e.transport, Action: e.action, OldPort: e.oldPort, Err: e.err, Count: e.n}
			if e.kind == MACLearned || e.kind == PortSecurityViolation {
				ev.MAC = append(net.HardwareAddr(nil), e.mac[:]...)
			}
			if fn != nil {
				fn(ev)
			}
		}
	}
	for {
		select {
		case <-stop:
			deliver()
			return
		case <-q.wake:
			deliver()
		}
	}
}

// Capture queue bounds: what a stalled capture reader may hold back before
// records are dropped. Two slabs of this size exist at most (one being
// filled, one being written).
const (
	maxCaptureQueued      = 4 << 20
	captureRecordOverhead = 12 // nanosecond timestamp and length
)

// captureQueue copies frames (under the switch lock, no I/O) into a slab
// that its writer goroutine swaps out and writes to the Capture.
type captureQueue struct {
	c       Capture
	start   time.Time
	mu      sync.Mutex
	slab    []byte
	spare   []byte
	closed  bool
	err     error // the write error that ended the capture
	dropped atomic.Uint64
	failed  atomic.Bool
	warned  atomic.Bool // the first drop was reported
	wake    chan struct{}
	done    chan struct{}
}

func newCaptureQueue(c Capture, start time.Time) *captureQueue {
	q := &captureQueue{c: c, start: start, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go q.writer()
	return q
}

// add queues a copy of frame, or counts it dropped when the queue is full.
// It reports whether the record was dropped and whether that drop is the
// capture's first. A failed or closed capture takes nothing and drops
// nothing.
func (q *captureQueue) add(now int64, frame []byte) (dropped, first bool) {
	if q.failed.Load() {
		return false, false
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false, false
	}
	if len(q.slab)+captureRecordOverhead+len(frame) > maxCaptureQueued {
		q.dropped.Add(1) // under q.mu: close freezes the count
		q.mu.Unlock()
		return true, !q.warned.Swap(true)
	}
	q.slab = binary.LittleEndian.AppendUint64(q.slab, uint64(now))
	q.slab = binary.LittleEndian.AppendUint32(q.slab, uint32(len(frame)))
	q.slab = append(q.slab, frame...)
	q.mu.Unlock()
	return false, false
}

// kick tells the writer a batch is complete.
func (q *captureQueue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close stops the queue: the writer writes what is queued, flushes and
// ends.
func (q *captureQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.kick()
}

func (q *captureQueue) writer() {
	defer close(q.done)
	for {
		<-q.wake
		q.mu.Lock()
		buf := q.slab
		q.slab = q.spare[:0]
		closed := q.closed
		q.mu.Unlock()
		err := q.write(buf)
		if err == nil {
			err = q.c.Flush()
		}
		q.mu.Lock()
		q.spare = buf[:0]
		if err != nil && q.err == nil {
			q.err = err
			q.failed.Store(true)
		}
		q.mu.Unlock()
		if err != nil || closed {
			return
		}
	}
}

func (q *captureQueue) write(buf []byte) error {
	for len(buf) >= captureRecordOverhead {
		ns := int64(binary.LittleEndian.Uint64(buf))
		n := int(binary.LittleEndian.Uint32(buf[8:]))
		frame := buf[captureRecordOverhead : captureRecordOverhead+n]
		buf = buf[captureRecordOverhead+n:]
		if err := q.c.WriteFrame(q.start.Add(time.Duration(ns)), frame); err != nil {
			return err
		}
	}
	return nil
}

// wait waits up to d for the writer to finish and returns the capture's
// error and whether it finished.
func (q *captureQueue) wait(d time.Duration) (error, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-q.done:
	case <-t.C:
		return nil, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err, true
}
