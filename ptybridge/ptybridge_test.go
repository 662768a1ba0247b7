package ptybridge

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/umlutils/umlutils/internal/syncbuf"
)

// syncbuf.Buffer is a Tee the test can read while the bridge writes.

// fakeUML is a pty whose master plays a UML with ssl1=pts; the bridge opens
// the slave's path.
func fakeUML(t *testing.T) (master *os.File, path string) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	path = s.Name()
	s.Close()
	if m, err = pollable(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, path
}

func readWithin(t *testing.T, f *os.File, want string, d time.Duration) {
	t.Helper()
	_ = f.SetReadDeadline(time.Now().Add(d))
	var got []byte
	buf := make([]byte, 256)
	for !strings.Contains(string(got), want) {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("reading %s: got %q, want %q: %v", f.Name(), got, want, err)
		}
	}
}

func expectNothing(t *testing.T, f *os.File, d time.Duration) {
	t.Helper()
	_ = f.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 256)
	if n, _ := f.Read(buf); n > 0 {
		t.Fatalf("%s: unexpected %q", f.Name(), buf[:n])
	}
}

func start(t *testing.T, br *Bridge) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not stop within 5 s")
			return nil
		}
	}
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)

func TestBridgeCopiesRawBothWaysAndLogs(t *testing.T) {
	m1, p1 := fakeUML(t)
	m2, p2 := fakeUML(t)
	a, err := Open(p1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.File.Close()
	b, err := Open(p2)
	if err != nil {
		t.Fatal(err)
	}
	defer b.File.Close()
	var tee syncbuf.Buffer
	br := New(a, b, Options{Tee: &tee, Now: func() time.Time { return t0 }})
	stop := start(t, br)

	m1.Write([]byte("hello\r\n"))
	readWithin(t, m2, "hello\r\n", 5*time.Second)
	m2.Write([]byte("pong\n\x01\xff"))
	readWithin(t, m1, "pong\n\x01\xff", 5*time.Second)
	expectNothing(t, m2, 100*time.Millisecond) // no echo back

	br.SetCut(true)
	m1.Write([]byte("lost\n"))
	expectNothing(t, m2, 300*time.Millisecond)
	br.SetCut(false)
	m1.Write([]byte("back\n"))
	readWithin(t, m2, "back\n", 5*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	want := `2026-11-27T12:00:00.123456Z A>B "hello\r\n"
2026-11-27T12:00:00.123456Z B>A "pong\n\x01\xff"
2026-11-27T12:00:00.123456Z -- cut
2026-11-27T12:00:00.123456Z A>B dropped "lost\n"
2026-11-27T12:00:00.123456Z -- healed
2026-11-27T12:00:00.123456Z A>B "back\n"
`
	if tee.String() != want {
		t.Errorf("tee log:\n%s\nwant:\n%s", tee.String(), want)
	}
}

func TestBridgeHexLogAndToggle(t *testing.T) {
	var tee syncbuf.Buffer
	br := New(End{}, End{}, Options{Tee: &tee, Hex: true, Now: func() time.Time { return t0 }})
	br.record("A>B", "", []byte("hi\n"))
	if !br.ToggleCut() || !br.Cut() || br.ToggleCut() {
		t.Error("ToggleCut does not alternate")
	}
	want := "2026-11-27T12:00:00.123456Z A>B 68690a\n2026-11-27T12:00:00.123456Z -- cut\n2026-11-27T12:00:00.123456Z -- healed\n"
	if tee.String() != want {
		t.Errorf("got %q, want %q", tee.String(), want)
	}
}

// A UML that exits closes its master: the bridge says which end closed.
func TestBridgeReportsClosedEnd(t *testing.T) {
	m1, p1 := fakeUML(t)
	_, p2 := fakeUML(t)
	a, err := Open(p1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(p2)
	if err != nil {
		t.Fatal(err)
	}
	defer a.File.Close()
	defer b.File.Close()
	done := make(chan error, 1)
	go func() { done <- New(a, b, Options{}).Run(context.Background()) }()
	m1.Close()
	select {
	case err := <-done:
		var ce *ClosedError
		if !errors.As(err, &ce) || ce.End != p1 {
			t.Fatalf("Run = %v, want a ClosedError for %s", err, p1)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not notice the closed end")
	}
}

func TestOpenRejectsNonTerminal(t *testing.T) {
	if _, err := Open("/dev/null"); !errors.Is(err, ErrNotTerminal) {
		t.Errorf("Open(/dev/null) = %v", err)
	}
	if _, err := Open("/nonexistent/pts/9"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
}

// With NewPair the bridge owns both ptys: a guest can close its path
// (reboot) and the next one to open it is connected again.
func TestPairSurvivesReopen(t *testing.T) {
	p, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	stop := start(t, New(p.A, p.B, Options{}))
	defer stop()
	open := func(path string) *os.File {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ga, gb := open(p.PathA), open(p.PathB)
	ga.Write([]byte("one\n"))
	readWithin(t, gb, "one\n", 5*time.Second)
	gb.Close() // guest B reboots
	time.Sleep(100 * time.Millisecond)
	gb = open(p.PathB)
	defer gb.Close()
	defer ga.Close()
	gb.Write([]byte("two\n"))
	readWithin(t, ga, "two\n", 5*time.Second)
	ga.Write([]byte("three\n"))
	readWithin(t, gb, "three\n", 5*time.Second)
}
