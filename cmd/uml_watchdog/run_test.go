package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/mconsole"
)

func shorten(t *testing.T) {
	old, oldK := timeout, killInterval
	timeout, killInterval = 300*time.Millisecond, 50*time.Millisecond
	t.Cleanup(func() { timeout, killInterval = old, oldK })
}

func TestEOFEndsQuietly(t *testing.T) {
	shorten(t)
	r, w := io.Pipe()
	go func() {
		for i := 0; i < 4; i++ { // pings keep it alive past its timeout
			time.Sleep(100 * time.Millisecond)
			w.Write([]byte{'x'})
		}
		w.Close()
	}()
	var out, errb bytes.Buffer
	if rc := run([]string{"-mconsole", "/nonexistent"}, r, &out, &errb); rc != 0 || out.String() != "\x00" || errb.Len() != 0 {
		t.Fatalf("rc %d out %q err %q", rc, out.String(), errb.String())
	}
}

func TestMconsoleModeSendsHang(t *testing.T) {
	shorten(t)
	path := filepath.Join(t.TempDir(), "notify")
	l, err := mconsole.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, _ := io.Pipe() // never written, never closed
	var out, errb bytes.Buffer
	if rc := run([]string{"-mconsole", path}, r, &out, &errb); rc != 1 {
		t.Fatalf("rc %d err %q", rc, errb.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := l.Next(ctx)
	if err != nil || n.Type != mconsole.NotifyHang || n.Data != "" {
		t.Fatalf("got %+v %v", n, err)
	}
}

// A stand-in for a guest: a process whose children ignore SIGINT, like
// programs traced by a UML kernel that SIGINT does not reach.
func TestPidModeKillsTheWholeTree(t *testing.T) {
	shorten(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command("sh", "-c", `trap '' INT; (trap '' INT; sleep 60 & echo $! >> "$0"; sleep 60) & echo $! >> "$0"; sleep 60`, pidFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var pids []int
	for deadline := time.Now().Add(5 * time.Second); len(pids) < 2; {
		b, _ := os.ReadFile(pidFile)
		pids = nil
		for _, f := range strings.Fields(string(b)) {
			p, _ := strconv.Atoi(f)
			pids = append(pids, p)
		}
		if time.Now().After(deadline) {
			t.Fatal("test tree did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// An unrelated process in the same group must survive.
	bystander := exec.Command("sleep", "60")
	bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: cmd.Process.Pid}
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer bystander.Process.Kill()

	r, _ := io.Pipe()
	var out, errb bytes.Buffer
	if rc := run([]string{"-pid", strconv.Itoa(cmd.Process.Pid)}, r, &out, &errb); rc != 1 {
		t.Fatalf("rc %d err %q", rc, errb.String())
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("root process still running")
	}
	for _, p := range pids {
		for i := 0; ; i++ {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
			if err != nil || strings.Contains(string(b), ") Z ") {
				break
			}
			if i > 100 {
				t.Fatalf("descendant %d survived", p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := syscall.Kill(bystander.Process.Pid, 0); err != nil {
		t.Fatalf("bystander in the same process group was killed: %v", err)
	}
}

// A pid that names no process is refused before the ready byte, as the C
// helper refuses it (kill(pid, 0) fails, exit 1).
func TestDeadPidRefused(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	pid := strconv.Itoa(cmd.Process.Pid)
	rc := run([]string{"-pid", pid}, strings.NewReader(""), &out, &errb)
	if rc != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "pid "+pid+": no such process") {
		t.Fatalf("rc %d out %q err %q", rc, out.String(), errb.String())
	}
}

func TestBothModesRefused(t *testing.T) {
	for _, args := range [][]string{{"-pid", "2", "-mconsole", "/x"}, {"-mconsole", "/x", "-pid", "2"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			rc := run(args, strings.NewReader(""), &out, &errb)
			if rc != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "exclude each other") {
				t.Errorf("%q: rc %d out %q err %q", args, rc, out.String(), errb.String())
			}
		})
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-pid"}, {"-pid", "x"}, {"-pid", "1"}, {"-foo", "1"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if rc := run(args, strings.NewReader(""), &out, &errb); rc != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "Usage") {
				t.Errorf("%q: rc %d out %q err %q", args, rc, out.String(), errb.String())
			}
		})
	}
}
