//go:build linux

package vswitch

import (
	"github.com/umlutils/umlutils/internal/mmsg"
)

// txItem is a frame the forwarding decision made for a port, sent once the
// switch lock is released.
type txItem struct {
	p     *Port
	frame []byte
}

type txFail struct {
	p    *Port
	n    int
	full bool
}

// txContext is one forwarding goroutine's pending output. Under the switch
// lock, deliver only appends to items; transmit then does the I/O without
// the lock (datagrams for daemon ports go out with one sendmmsg per
// destination socket and batch) and takes the lock again only if a send
// failed, to fix the counters. Frames are referenced, not copied: they stay
// valid until transmit returns (receive buffers are reused only after it).
type txContext struct {
	items   []txItem
	fails   []txFail
	capture *captureQueue // a record was queued for it: wake its writer

	dport  *Port // the daemon port the datagrams in dgram go to
	dgram  *mmsg.SendBatch
	dports []*Port
	bytes  []int
}

func newTxContext(n int) *txContext {
	return &txContext{dgram: mmsg.NewSendBatch(n), dports: make([]*Port, n), bytes: make([]int, n)}
}

// fail records a frame p's peer refused.
func (tx *txContext) fail(p *Port, n int, full bool) {
	tx.fails = append(tx.fails, txFail{p: p, n: n, full: full})
}

// flushDgram sends the queued datagrams.
func (tx *txContext) flushDgram() {
	if tx.dgram.Len() == 0 {
		return
	}
	p := tx.dport
	p.dfdMu.RLock()
	if p.dfd >= 0 {
		tx.dgram.Flush(p.dfd, msgDontwait, func(i int, err errno) {
			tx.fail(tx.dports[i], tx.bytes[i], err == eagain)
		})
	} else {
		// The port went away since the frames were queued.
		tx.dgram.Discard()
	}
	p.dfdMu.RUnlock()
	for i := range tx.dports {
		tx.dports[i] = nil
	}
	tx.dport = nil
}

// transmit sends what the forwarding decisions queued. Caller must NOT
// hold sw.mu.
func (sw *Switch) transmit(tx *txContext) {
	groupByPort(tx.items)
	for i := range tx.items {
		it := &tx.items[i]
		it.p.tr.send(tx, it.p, it.frame)
		it.p, it.frame = nil, nil
	}
	tx.items = tx.items[:0]
	tx.flushDgram()
	if q := tx.capture; q != nil {
		tx.capture = nil
		q.kick()
	}
	if len(tx.fails) > 0 {
		sw.mu.Lock()
		for _, f := range tx.fails {
			f.p.txFailed(f.n, f.full)
		}
		sw.mu.Unlock()
		for i := range tx.fails {
			tx.fails[i] = txFail{}
		}
		tx.fails = tx.fails[:0]
	}
}

// groupByPort orders items by port, keeping each port's frames in order,
// so that a port's frames go out in one sendmmsg. Batches are short and
// mostly grouped already (unicast from one sender to one port): an
// insertion sort does no work then, and allocates nothing.
func groupByPort(items []txItem) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].p.ID < items[j-1].p.ID; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}
