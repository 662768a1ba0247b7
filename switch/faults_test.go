package vswitch

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// A delay line is bounded in bytes, not only in frames: big frames against
// a long delay must not pile up a gigabyte.
func TestDelayLineBoundedInBytes(t *testing.T) {
	dl := newDelayLine(func([][]byte) {})
	go dl.run()
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
	go dl.run()
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

// A port whose descriptor fails (a tap device deleted under the switch:
// reads return EBADFD) goes away with the reason; the switch keeps running.
func TestFailingPacketPortCostsOnlyItself(t *testing.T) {
	events := make(chan Event, 16)
	sw := New(Config{OnEvent: func(e Event) { events <- e }})
	dir, err := os.Open(t.TempDir()) // read(2) on a directory: EISDIR
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sw.AddPacketPort(TransportTap, "tap:gone", dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind != PortRemoved {
				continue
			}
			if e.Err == nil || !strings.Contains(e.Err.Error(), "tap:gone") {
				t.Fatalf("PortRemoved without the reason: %v", e.Err)
			}
		case err := <-done:
			t.Fatalf("the switch ended with the port: %v", err)
		case <-deadline:
			t.Fatal("failing port was not removed")
		}
		break
	}
	select {
	case err := <-done:
		t.Fatalf("the switch ended after the port failed: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
