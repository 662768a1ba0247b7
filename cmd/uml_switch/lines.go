package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// maxQueuedStatus bounds the status bytes waiting for a slow stdout
// (a terminal under scroll lock, "| less" paused): past it, lines are
// dropped and counted, never waited for.
const maxQueuedStatus = 256 << 10

// lineWriter writes whole lines from a goroutine of its own, so that
// printing never waits on the reader: the switch's event goroutine (and
// through it forwarding) must not stall because nobody drains stdout. A
// line is written with the lines queued with it in one write, so readers
// of a pipe see every line as soon as it is printed (no stdio buffering,
// no need for stdbuf -o0).
//
// A write blocked on an inherited stdout or terminal cannot be cancelled;
// the writer goroutine belongs to the process, and close only waits for it
// a bounded time.
type lineWriter struct {
	w       io.Writer
	quiet   bool
	mu      sync.Mutex
	pending []byte
	writing bool // the writer holds lines taken from pending
	closed  bool
	dropped atomic.Uint64
	warned  atomic.Bool
	// onDrop is called (without locks held) the first time a line is
	// dropped.
	onDrop func()
	kick   chan struct{}
	done   chan struct{}
}

func newLineWriter(w io.Writer, quiet bool) *lineWriter {
	l := &lineWriter{w: w, quiet: quiet, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go l.writer()
	return l
}

func (l *lineWriter) printf(format string, a ...any) {
	if l.quiet {
		return
	}
	l.put(fmt.Sprintf(format, a...) + "\n")
}

// put queues s, which holds whole lines, or drops it when the queue is
// full.
func (l *lineWriter) put(s string) {
	l.mu.Lock()
	if l.closed || len(l.pending)+len(s) > maxQueuedStatus {
		closed := l.closed
		l.mu.Unlock()
		if !closed {
			l.dropped.Add(1)
			if !l.warned.Swap(true) && l.onDrop != nil {
				l.onDrop()
			}
		}
		return
	}
	l.pending = append(l.pending, s...)
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *lineWriter) writer() {
	defer close(l.done)
	var buf []byte
	broken := false
	for range l.kick {
		l.mu.Lock()
		buf, l.pending = l.pending, buf[:0]
		closed := l.closed
		l.writing = true
		l.mu.Unlock()
		if len(buf) > 0 && !broken {
			// A reader that went away (EPIPE) loses the rest; the
			// switch goes on.
			if _, err := l.w.Write(buf); err != nil {
				broken = true
			}
		}
		l.mu.Lock()
		l.writing = false
		l.mu.Unlock()
		if closed {
			l.mu.Lock()
			left := len(l.pending)
			l.mu.Unlock()
			if left == 0 {
				return
			}
			select {
			case l.kick <- struct{}{}:
			default:
			}
		}
	}
}

// flush waits up to d for the lines queued so far to be written: the
// start-up lines go out before the switch says it is ready, as the C
// switch's synchronous printf has them (`uml_switch -daemon` returns once
// the control socket answers, and scripts read the line then).
func (l *lineWriter) flush(d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		l.mu.Lock()
		idle := len(l.pending) == 0 && !l.writing
		l.mu.Unlock()
		if idle || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// close stops taking lines and waits up to d for the queued ones to be
// written.
func (l *lineWriter) close(d time.Duration) {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.mu.Unlock()
	if !already {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.done:
	case <-t.C:
	}
}
