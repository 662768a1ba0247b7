package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestUsageAndOpenErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{nil, 2, "Usage: ptybridge"},
		{[]string{"/dev/pts/0"}, 2, "Usage: ptybridge"},
		{[]string{"-new", "/dev/pts/0"}, 2, "Usage: ptybridge"},
		{[]string{"-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"/nonexistent/pts/7", "/dev/null"}, 1, "ptybridge: open /nonexistent/pts/7: no such file or directory\n"},
		{[]string{"/dev/null", "/dev/null"}, 1, "ptybridge: /dev/null: not a terminal\n"},
	} {
		var out, errb lockedBuffer
		code := run(c.args, nil, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.err) || out.String() != "" {
			t.Errorf("ptybridge %q: exit %d, stdout %q, stderr %q", c.args, code, out.String(), errb.String())
		}
	}
}

// -new prints two pty paths, bridges them, toggles the cut on SIGUSR1 and
// stops cleanly on SIGTERM; -tee - logs to standard output.
func TestNewWithSignals(t *testing.T) {
	sigs := make(chan chan<- os.Signal, 1)
	old := notifySignals
	defer func() { notifySignals = old }()
	notifySignals = func(c chan<- os.Signal) func() { sigs <- c; return func() {} }

	pr, pw := io.Pipe()
	var errb lockedBuffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"-new", "-tee", "-"}, nil, pw, &errb); pw.Close() }()
	lines := bufio.NewReader(pr)
	var paths [2]string
	for i := range paths {
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the paths: %v (stderr %q)", err, errb.String())
		}
		paths[i] = strings.TrimSpace(l)
	}
	logged := make(chan string, 16)
	go func() {
		for {
			l, err := lines.ReadString('\n')
			if err != nil {
				return
			}
			logged <- l
		}
	}()
	sig := <-sigs
	ga, err := os.OpenFile(paths[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ga.Close()
	gb, err := os.OpenFile(paths[1], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	expectLog := func(want string) {
		t.Helper()
		select {
		case l := <-logged:
			if !strings.HasSuffix(l, want+"\n") {
				t.Errorf("log line %q, want one ending in %q", l, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no log line %q", want)
		}
	}
	ga.Write([]byte("x\n"))
	expectLog(` A>B "x\n"`)
	buf := make([]byte, 8)
	if n, err := gb.Read(buf); err != nil || string(buf[:n]) != "x\n" {
		t.Fatalf("B read %q, %v", buf[:n], err)
	}
	sig <- syscall.SIGUSR1
	expectLog(" -- cut")
	gb.Write([]byte("y\n"))
	expectLog(` B>A dropped "y\n"`)
	sig <- syscall.SIGUSR1
	expectLog(" -- healed")
	sig <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 || errb.String() != "ptybridge: cable cut\nptybridge: cable healed\n" {
			t.Errorf("exit %d, stderr %q", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}
