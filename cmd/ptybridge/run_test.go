package main

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/umlutils/umlutils/internal/syncbuf"
)

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
		{[]string{"/nonexistent/pts/7", "/dev/null"}, 1, "/nonexistent/pts/7: no such file or directory\n"},
		{[]string{"/dev/null", "/dev/zero"}, 1, "ptybridge: /dev/null: not a terminal"},
		{[]string{"/dev/null", "/dev/null"}, 1, "ptybridge: /dev/null and /dev/null: both ends are the same terminal\n"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb syncbuf.Buffer
			code := run(c.args, nil, &out, &errb)
			if code != c.code || !strings.Contains(errb.String(), c.err) || out.String() != "" {
				t.Errorf("ptybridge %q: exit %d, stdout %q, stderr %q", c.args, code, out.String(), errb.String())
			}
		})
	}
}

// Bad ends are refused before anything is opened or created: the same pty
// twice (by its path or a link to it: bridged to itself a guest would
// read its own output back), a non-pty terminal, a tee file that cannot
// be created.
func TestBadEnds(t *testing.T) {
	m1, s1, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	defer s1.Close()
	m2, s2, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	defer s2.Close()
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(s1.Name(), link); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("x"), 0o644)
	tee := filepath.Join(dir, "no", "such", "dir", "log")
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{s1.Name(), s1.Name()}, s1.Name() + " and " + s1.Name() + ": both ends are the same terminal"},
		{[]string{s1.Name(), link}, "both ends are the same terminal"},
		{[]string{s1.Name(), plain}, plain + ": not a terminal"},
		{[]string{"/dev/ptmx", s1.Name()}, "/dev/ptmx: not a terminal"},
		{[]string{"-tee", tee, s1.Name(), s2.Name()}, tee + ": no such file or directory"},
		{[]string{"-tee", fifo, s1.Name(), s2.Name()}, fifo + ": no such device or address"}, // nobody reads it
		{[]string{"-tee", dir, s1.Name(), s2.Name()}, dir + ": is a directory"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb syncbuf.Buffer
			code := run(c.args, nil, &out, &errb)
			if code != 1 || !strings.Contains(errb.String(), c.err) || out.String() != "" {
				t.Errorf("ptybridge %q: exit %d, stdout %q, stderr %q", c.args, code, out.String(), errb.String())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "no")); !os.IsNotExist(err) {
		t.Errorf("a failed run created %s", filepath.Join(dir, "no"))
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
	var errb syncbuf.Buffer
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
