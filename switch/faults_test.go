package vswitch

import (
	"testing"
	"time"
)

// A delay line is bounded in bytes, not only in frames: big frames against
// a long delay must not pile up a gigabyte.
func TestDelayLineBoundedInBytes(t *testing.T) {
	dl := newDelayLine(func([][]byte) {})
	defer dl.close()
	frame := make([]byte, 65535)
	due := time.Now().Add(time.Minute)
	n := 0
	for i := 0; i < maxDelayed; i++ {
		if !dl.add(due, frame) {
			break
		}
		n++
	}
	if want := maxDelayedBytes / len(frame); n != want {
		t.Fatalf("delay line took %d frames of %d bytes, want %d (%d bytes)", n, len(frame), want, maxDelayedBytes)
	}
	if !dl.add(due, frame[:64]) {
		t.Fatalf("a small frame that fits the byte budget was refused")
	}
}

// Released frames give their bytes back to the budget.
func TestDelayLineReleasesBudget(t *testing.T) {
	got := make(chan int, 1024)
	dl := newDelayLine(func(fs [][]byte) {
		for range fs {
			got <- 1
		}
	})
	defer dl.close()
	frame := make([]byte, 65535)
	for round := 0; round < 3; round++ {
		n := 0
		for dl.add(time.Now().Add(10*time.Millisecond), frame) {
			n++
		}
		for i := 0; i < n; i++ {
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: %d of %d frames released", round, i, n)
			}
		}
		if n == 0 {
			t.Fatalf("round %d: budget not given back", round)
		}
	}
}
