package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/umlutils/umlutils/internal/testbed"
)

// handoff is what the UML's side of the socket saw from one helper.
type handoff struct {
	pidIsHelpers   bool   // the body is the helper's pid as a C int
	sameTerminal   bool   // the passed fd is the helper's stdin pty
	peer           string // the sender's address (-uml-socket only)
	aliveAfterHUP  bool   // still running after SIGHUP, waiting to be killed
	stderr         string
	bodyLen, nfds  int
	terminalWorked bool // bytes written to the passed fd reach the pty master
}

// playUML runs helper as the UML's port channel would, with a pty as its
// stdin and controlling terminal, and receives the terminal on its socket:
// fd 3 (a datagram socketpair, as port_connection's os_pipe makes), or,
// with viaPath, a datagram socket bound at a path it is told with
// -uml-socket (as xterm.c does).
func playUML(t *testing.T, helper string, viaPath bool) handoff {
	t.Helper()
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	defer pts.Close()

	var recvFD int
	cmd := exec.Command(helper)
	if viaPath {
		path := filepath.Join(t.TempDir(), "uml.sock")
		recvFD, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(recvFD, &unix.SockaddrUnix{Name: path}); err != nil {
			t.Fatal(err)
		}
		cmd.Args = append(cmd.Args, "-uml-socket", path)
	} else {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		recvFD = pair[0]
		theirs := os.NewFile(uintptr(pair[1]), "helper-end")
		defer theirs.Close()
		cmd.ExtraFiles = []*os.File{theirs} // fd 3
	}
	defer unix.Close(recvFD)
	// A file, not a buffer: the helper never exits on its own, so its
	// stderr is read while it runs.
	errf, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	stderrNow := func() string { b, _ := os.ReadFile(errf.Name()); return string(b) }
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	var h handoff
	tv := unix.Timeval{Sec: 10}
	if err := unix.SetsockoptTimeval(recvFD, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, from, err := unix.Recvmsg(recvFD, body, oob, 0)
	if err != nil {
		t.Fatalf("%s sent nothing within 10 s: %v; stderr: %s", helper, err, stderrNow())
	}
	h.bodyLen = n
	h.pidIsHelpers = n == 4 && int(binary.NativeEndian.Uint32(body)) == cmd.Process.Pid
	if sa, ok := from.(*unix.SockaddrUnix); ok {
		h.peer = strings.Replace(sa.Name, fmt.Sprintf("%5d", cmd.Process.Pid), "<pid>", 1)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		h.nfds += len(fds)
		for _, fd := range fds {
			var a, b unix.Stat_t
			if unix.Fstat(fd, &a) == nil && unix.Fstat(int(pts.Fd()), &b) == nil {
				h.sameTerminal = a.Rdev == b.Rdev && a.Ino == b.Ino
			}
			if _, err := unix.Write(fd, []byte("hello\n")); err == nil {
				_ = ptm.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 64)
				m, _ := ptm.Read(buf)
				h.terminalWorked = strings.Contains(string(buf[:m]), "hello")
			}
			unix.Close(fd)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	select {
	case <-exited:
	case <-time.After(300 * time.Millisecond):
		h.aliveAfterHUP = true
	}
	h.stderr = stderrNow()
	return h
}

func buildOurs(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return testbed.BuildTool(t, root, t.TempDir(), "port-helper")
}

// Our helper, spawned as the UML would, hands over its terminal, with its
// pid, through fd 3 and through -uml-socket, and waits, ignoring SIGHUP.
func TestHelperHandsOverTerminal(t *testing.T) {
	ours := buildOurs(t)
	for _, viaPath := range []bool{false, true} {
		h := playUML(t, ours, viaPath)
		if !h.pidIsHelpers || h.nfds != 1 || !h.sameTerminal || !h.terminalWorked || !h.aliveAfterHUP || h.stderr != "" {
			t.Errorf("viaPath=%v: %+v", viaPath, h)
		}
		// (Go's address decoding stops at the first NUL of the padding.)
		if viaPath && h.peer != "@<pid>" {
			t.Errorf("bound to %q, want the C helper's abstract \"\\0%%5d\" name", h.peer)
		}
	}
}

// In-process: argument errors, and a terminal that is not our controlling
// one (TIOCNOTTY fails, reported, not fatal).
func TestRunInProcess(t *testing.T) {
	var errb bytes.Buffer
	if code := run([]string{"-uml-socket"}, os.Stdin, nil, &errb); code != 1 || !strings.Contains(errb.String(), "-uml-socket needs") {
		t.Errorf("-uml-socket without a path: %d %q", code, errb.String())
	}
	errb.Reset()
	missing := filepath.Join(t.TempDir(), "nosuch.sock")
	if code := run([]string{"-uml-socket", missing}, os.Stdin, nil, &errb); code != 1 ||
		errb.String() != "port-helper: connect "+missing+": no such file or directory\n" {
		t.Errorf("missing socket: %d %q", code, errb.String())
	}
	errb.Reset()
	dir := t.TempDir()
	if code := run([]string{"-uml-socket", dir}, os.Stdin, nil, &errb); code != 1 ||
		errb.String() != "port-helper: connect "+dir+": not a socket\n" {
		t.Errorf("directory as socket: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run(nil, strings.NewReader(""), nil, &errb); code != 1 {
		t.Errorf("non-file stdin: %d %q", code, errb.String())
	}

	// Run by hand, with no socket on fd 3: a message and status 1 before
	// the terminal is touched (no TIOCNOTTY message).
	oldSock := inheritedSocket
	defer func() { inheritedSocket = oldSock }()
	closed, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(closed)
	inheritedSocket = closed
	errb.Reset()
	if code := run(nil, os.Stdin, nil, &errb); code != 1 ||
		errb.String() != fmt.Sprintf("port-helper: file descriptor %d is not open: the UML kernel that runs port-helper leaves its socket there (or give -uml-socket SOCKET)\n", closed) {
		t.Errorf("no fd 3: %d %q", code, errb.String())
	}
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inheritedSocket = int(f.Fd())
	errb.Reset()
	if code := run(nil, os.Stdin, nil, &errb); code != 1 || !strings.Contains(errb.String(), "is not a socket") {
		t.Errorf("fd 3 not a socket: %d %q", code, errb.String())
	}

	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	_, pts, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer pts.Close()
	oldWait := waitForever
	defer func() { waitForever = oldWait }()
	inheritedSocket, waitForever = pair[1], func() {}
	errb.Reset()
	if code := run(nil, pts, nil, &errb); code != 0 ||
		errb.String() != "TIOCNOTTY failed in port-helper, check UML's exec call for xterm or telnetd: Inappropriate ioctl for device\n" {
		t.Errorf("run: %d %q", code, errb.String())
	}
	body := make([]byte, 8)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(pair[0], body, oob, unix.MSG_DONTWAIT)
	if err != nil || n != 4 || oobn == 0 || int(binary.NativeEndian.Uint32(body)) != os.Getpid() {
		t.Errorf("received %d bytes, %d control bytes, %v", n, oobn, err)
	}
}
