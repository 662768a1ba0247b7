package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/umlutils/umlutils/internal/syncbuf"
	"github.com/umlutils/umlutils/internal/testbed"
)

// startRun runs the command body in-process until the returned stop is
// called; stop returns the exit code.
func startRun(t *testing.T, args ...string) (stdout, stderr *syncbuf.Buffer, stop func() int) {
	t.Helper()
	stdout, stderr = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- runCtx(ctx, append([]string{"uml_switch"}, args...), nil, stdout, stderr, nil) }()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(5 * time.Second):
				t.Errorf("switch did not stop")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return
}

// The lines a script reads from the C switch, in the same order.
func TestStatusLines(t *testing.T) {
	ctl := filepath.Join(t.TempDir(), "sw.ctl")
	out, errOut, stop := startRun(t, "-hub", "-unix", ctl)
	testbed.WaitForFile(t, ctl, 5*time.Second)
	scenario(t, ctl, true)
	if code := stop(); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	// Port numbers as the C switch prints them: its descriptors, lowest
	// free first from 5 (pending control connections hold one too).
	want := `uml_switch will be a hub instead of a switch
uml_switch attached to unix socket '` + ctl + `'
New connection
New connection
 Addr: 02:5e:00:00:00:01 New port 5
 Addr: 02:5e:00:01:00:01 New port 6
 Addr: 02:5e:00:00:00:01 New port 6 old port 5
New connection
 Addr: 02:5e:00:00:00:01 New port 5 old port 6
Disconnect
Disconnect
Disconnect
`
	if got := out.String(); got != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", got, want)
	}
	for _, w := range []string{"version 2", "bad request type"} {
		if !strings.Contains(errOut.String(), w) {
			t.Errorf("stderr lacks %q: %s", w, errOut)
		}
	}
	if _, err := os.Stat(ctl); !os.IsNotExist(err) {
		t.Errorf("control socket left behind")
	}
}

func TestQuietAndPcapToStdout(t *testing.T) {
	ctl := filepath.Join(t.TempDir(), "sw.ctl")
	out, errOut, stop := startRun(t, "-q", "-unix", ctl)
	testbed.WaitForFile(t, ctl, 5*time.Second)
	scenario(t, ctl, true)
	stop()
	if out.String() != "" || errOut.String() != "" {
		t.Fatalf("-q printed: %q %q", out, errOut)
	}
	ctl2 := filepath.Join(t.TempDir(), "sw.ctl")
	out, errOut, stop = startRun(t, "-pcap", "-", "-unix", ctl2)
	testbed.WaitForFile(t, ctl2, 5*time.Second)
	scenario(t, ctl2, true)
	stop()
	if !strings.HasPrefix(out.String(), "\xd4\xc3\xb2\xa1") {
		t.Fatalf("stdout is no pcap stream: %q", out.String()[:min(len(out.String()), 32)])
	}
	if !strings.Contains(errOut.String(), "New connection") {
		t.Fatalf("status lines not on stderr: %q", errOut)
	}
}

func TestBadArguments(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-unix"}, {"-tap"}, {"-bogus"}, {"-compat-v0", "-unix", filepath.Join(dir, "x")},
		{"-unix", filepath.Join(dir, "y"), "extra"},
	} {
		var out, errOut bytes.Buffer
		code := runCtx(context.Background(), append([]string{"uml_switch"}, args...), nil, &out, &errOut, nil)
		if code != 1 || !strings.HasPrefix(errOut.String(), "Usage : uml_switch [ -unix control-socket ]") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
	}
	for _, args := range [][]string{
		{"-mode", "99", "-unix", filepath.Join(dir, "z")},
		{"-group", "no-such-group-here", "-unix", filepath.Join(dir, "z")},
		{"-pcap", filepath.Join(dir, "no", "such", "dir.pcap"), "-unix", filepath.Join(dir, "z")},
		{"-unix", filepath.Join(dir, "no", "such", "dir.ctl")},
		{"-unix", ""},
		{"-compat-v0", "-unix", filepath.Join(dir, "z"), ""},
		{"-port-macs", "x", "-unix", filepath.Join(dir, "z")},
		{"-port-macs", "-1", "-unix", filepath.Join(dir, "z")},
		{"-port-macs-action", "burn", "-unix", filepath.Join(dir, "z")},
		{"-storm", "fast", "-unix", filepath.Join(dir, "z")},
	} {
		var out, errOut bytes.Buffer
		code := runCtx(context.Background(), append([]string{"uml_switch"}, args...), nil, &out, &errOut, nil)
		if code != 1 || !strings.HasPrefix(errOut.String(), "uml_switch: ") || strings.Contains(out.String(), "attached") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out.String(), errOut.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "z")); err == nil {
			t.Errorf("%v: left a socket file behind", args)
		}
	}
}

func TestModeAndGroup(t *testing.T) {
	ctl := filepath.Join(t.TempDir(), "sw.ctl")
	_, errOut, stop := startRun(t, "-mode", "660", "-group", "0", "-unix", ctl)
	testbed.WaitForFile(t, ctl, 5*time.Second)
	fi, err := os.Stat(ctl)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("mode %v, want 0660 (%s)", fi.Mode().Perm(), errOut)
	}
	stop()
}

// As the C switch: when stdin is a terminal, EOF on it (^D) ends the switch.
func TestTerminalEOFEnds(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	ctl := filepath.Join(t.TempDir(), "sw.ctl")
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runCtx(context.Background(), []string{"uml_switch", "-unix", ctl}, tty, &out, &errOut, nil)
	}()
	testbed.WaitForFile(t, ctl, 5*time.Second)
	if _, err := ptmx.Write([]byte{4}); err != nil { // ^D: EOF in canonical mode
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("EOF on the terminal did not end the switch")
	}
	if _, err := os.Stat(ctl); !os.IsNotExist(err) {
		t.Errorf("control socket left behind")
	}
	// The C switch says why it ends; scripts watching its output see it.
	if !strings.HasSuffix(out.String(), "\nEOF on stdin, cleaning up and exiting\n") {
		t.Errorf("stdout %q does not end with the C switch's EOF line", out.String())
	}
}

// The switch outlives the reader of its stdout, and a signal still removes
// its socket: a status line written to a broken pipe used to kill it by
// SIGPIPE before it could clean up.
func TestBrokenStdoutPipe(t *testing.T) {
	if os.Getenv("UMLUTILS_SWITCH_HELPER") == "1" {
		code, sig := runMain(append([]string{"uml_switch"}, strings.Fields(os.Getenv("UMLUTILS_SWITCH_ARGS"))...), os.Stdin, os.Stdout, os.Stderr)
		if sig != 0 {
			dieBy(sig)
		}
		os.Exit(code)
	}
	ctl := filepath.Join(t.TempDir(), "sw.ctl")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBrokenStdoutPipe$")
	cmd.Env = append(os.Environ(), "UMLUTILS_SWITCH_HELPER=1", "UMLUTILS_SWITCH_ARGS=-unix "+ctl)
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	w.Close()
	testbed.WaitForFile(t, ctl, 5*time.Second)
	r.Close() // the reader goes away
	// A new connection makes the switch print a line into the broken pipe.
	c, err := net.Dial("unix", ctl)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("switch ended with %v, want death by SIGTERM after cleanup", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("switch did not end on SIGTERM")
	}
	if _, err := os.Stat(ctl); !os.IsNotExist(err) {
		t.Errorf("control socket left behind")
	}
}
