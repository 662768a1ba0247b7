//go:build linux

package watchdog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHelperWait(t *testing.T) {
	t.Run("ready byte then EOF", func(t *testing.T) {
		var out bytes.Buffer
		h := &Helper{In: strings.NewReader("ping"), Out: &out, Timeout: time.Second}
		if err := h.Wait(context.Background()); err != nil {
			t.Fatalf("Wait: %v, want nil on EOF", err)
		}
		if out.String() != "\x00" {
			t.Fatalf("ready byte %q, want one NUL", out.String())
		}
	})
	t.Run("no ping expires", func(t *testing.T) {
		r, w := io.Pipe()
		defer w.Close()
		h := &Helper{In: r, Out: io.Discard, Timeout: 50 * time.Millisecond}
		if err := h.Wait(context.Background()); !errors.Is(err, ErrExpired) {
			t.Fatalf("Wait: %v, want ErrExpired", err)
		}
	})
	t.Run("pings keep it alive", func(t *testing.T) {
		r, w := io.Pipe()
		go func() {
			for i := 0; i < 6; i++ {
				time.Sleep(30 * time.Millisecond)
				_, _ = w.Write([]byte{1})
			}
			w.Close()
		}()
		h := &Helper{In: r, Out: io.Discard, Timeout: 100 * time.Millisecond}
		if err := h.Wait(context.Background()); err != nil {
			t.Fatalf("Wait: %v, want nil: pings came every 30 ms against a 100 ms timeout", err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		r, w := io.Pipe()
		defer w.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		h := &Helper{In: r, Out: io.Discard}
		if err := h.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait: %v, want context.Canceled", err)
		}
	})
}

// KillGuest must kill the whole tree, also the children that outlive their
// parent's SIGINT (a shell's background jobs ignore SIGINT, as a guest's
// traced processes survive their kernel).
func TestKillGuestKillsTheTree(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 60 & sleep 60 & echo started; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	buf := make([]byte, 8)
	if _, err := io.ReadFull(stdout, buf); err != nil {
		t.Fatal(err)
	}
	tree := descendants(pid)
	if len(tree) != 2 {
		t.Fatalf("descendants of the shell: %v, want its 2 sleeps", tree)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if err := KillGuest(pid, 20*time.Millisecond); err != nil {
		t.Fatalf("KillGuest: %v", err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the shell is still running")
	}
	deadline := time.Now().Add(5 * time.Second)
	for p := range tree {
		for alive(p) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d of the tree is still alive", p.pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// alive reports whether p still runs: it exists, is the same process (start
// time), and is not a zombie waiting for its new parent to reap it.
func alive(p procID) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	_, start, err := procStat(p.pid)
	return err == nil && start == p.start && f[0] != "Z"
}
