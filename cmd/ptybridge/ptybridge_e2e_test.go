//go:build e2e

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/syncbuf"
	"github.com/umlutils/umlutils/internal/testbed"
)

// serialGuest is the init body of a guest that talks on its ttyS1. The
// host's /dev has no ttyS1, so the guest mounts its own devtmpfs under the
// test's directory (the mount exists only inside the guest). It then
// follows a script of lines in $D/NAME.cmd written by the test: "send X"
// writes X to the line, "recv" reads one line and prints NAME-GOT:X on the
// console; each step acknowledged with NAME-STEP-N: (the console
// ends lines with \r\n).
const serialGuest = `mkdir -p $D/dev-$NAME && mount -t devtmpfs devtmpfs $D/dev-$NAME || exit 1
T=$D/dev-$NAME/ttyS1
exec 3<>$T
stty raw -echo <&3 || exit 1
echo $NAME-READY
n=0
while [ $n -lt 40 ]; do
	n=$((n+1))
	while [ ! -e $D/$NAME.$n ]; do sleep 0.05; done
	read -r cmd arg < $D/$NAME.$n
	case $cmd in
	send) echo "$arg" >&3 ;;
	recv) read -r line <&3; echo "$NAME-GOT:$line" ;;
	stop) break ;;
	esac
	echo "$NAME-STEP-$n:"
done`

// peer drives one serialGuest.
type peer struct {
	t    *testing.T
	g    *testbed.Guest
	name string
	dir  string
	step int
}

func (p *peer) do(cmd string) {
	p.t.Helper()
	p.step++
	f := filepath.Join(p.dir, p.name+"."+itoa(p.step))
	if err := os.WriteFile(f+".tmp", []byte(cmd+"\n"), 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(f+".tmp", f); err != nil {
		p.t.Fatal(err)
	}
}

func (p *peer) done(timeout time.Duration) {
	p.t.Helper()
	p.g.WaitFor(p.name+"-STEP-"+itoa(p.step)+":", timeout)
}

func itoa(n int) string { return strconv.Itoa(n) }

// send makes from write line and to read it; it returns what to read.
func send(t *testing.T, from, to *peer, line string) string {
	t.Helper()
	to.do("recv")
	from.do("send " + line)
	from.done(20 * time.Second)
	return readLine(t, to)
}

func readLine(t *testing.T, to *peer) string {
	t.Helper()
	out, err := to.g.TryWaitFor(to.name+"-STEP-"+itoa(to.step)+":", 10*time.Second)
	if err != nil {
		return "(nothing: " + err.Error() + ")"
	}
	m := regexp.MustCompile(to.name + `-GOT:([^\r\n]*)\r?\n` + to.name + "-STEP-" + itoa(to.step) + ":").FindStringSubmatch(out)
	if m == nil {
		return "(no GOT line)"
	}
	return m[1]
}

func bootPeer(t *testing.T, b *testbed.Bed, name, dir, ssl1 string) *peer {
	g := b.Boot(t, testbed.GuestConfig{
		Args:    []string{"ssl1=" + ssl1},
		Env:     map[string]string{"D": dir, "NAME": name},
		Script:  serialGuest,
		Timeout: 120 * time.Second,
	})
	return &peer{t: t, g: g, name: name, dir: dir}
}

var ptsLine = regexp.MustCompile(`Serial line 1 assigned device '(/dev/pts/[0-9]+)'`)

// Two UML 6.1 guests with ssl1=pts exchange lines over ptybridge both ways;
// the tee log shows both directions; SIGUSR1 cuts the cable (a line sent
// then is dropped and logged so) and heals it; when a guest goes away the
// bridge says which side closed and exits 1.
func TestE2EPtybridgeBetweenTwoGuests(t *testing.T) {
	b := testbed.Get(t)
	bridge := b.Tool(t, "ptybridge")
	dir := t.TempDir()
	a := bootPeer(t, b, "A", dir, "pts")
	c := bootPeer(t, b, "B", dir, "pts")
	var paths []string
	for _, p := range []*peer{a, c} {
		m := ptsLine.FindStringSubmatch(p.g.WaitFor(p.name+"-READY", 30*time.Second))
		if m == nil {
			t.Fatalf("guest %s printed no \"Serial line 1 assigned device\" line", p.name)
		}
		paths = append(paths, m[1])
	}
	tee := filepath.Join(dir, "tee.log")
	d, dout, exited := startBridge(t, bridge, "-tee", tee, paths[0], paths[1])
	testbed.WaitForFile(t, tee, 5*time.Second)

	if got := send(t, a, c, "ping-from-A"); got != "ping-from-A" {
		t.Fatalf("B received %q", got)
	}
	if got := send(t, c, a, "pong-from-B"); got != "pong-from-B" {
		t.Fatalf("A received %q", got)
	}

	// Cut: B waits for a line; the one A sends now must not arrive.
	_ = d.Process.Signal(syscall.SIGUSR1)
	waitForLog(t, tee, " -- cut")
	c.do("recv")
	a.do("send lost-while-cut")
	a.done(20 * time.Second)
	waitForLog(t, tee, ` A>B dropped "lost-while-cut\n"`)
	_ = d.Process.Signal(syscall.SIGUSR1)
	waitForLog(t, tee, " -- healed")
	a.do("send after-heal")
	a.done(20 * time.Second)
	if got := readLine(t, c); got != "after-heal" {
		t.Fatalf("after healing B received %q, want after-heal", got)
	}
	log := readFile(t, tee)
	for _, want := range []string{` A>B "ping-from-A\n"`, ` B>A "pong-from-B\n"`, ` A>B "after-heal\n"`} {
		if !strings.Contains(log, want) {
			t.Errorf("tee log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, `A>B "lost-while-cut`) {
		t.Errorf("a line sent while cut was delivered:\n%s", log)
	}

	// Guest B powers off: the bridge names its pty and exits 1.
	c.do("stop")
	c.g.WaitFor("TESTBED-DONE", 20*time.Second)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(dout.String(), "ptybridge: "+paths[1]+": closed") {
			t.Errorf("after B went away: %v, output %q", err, dout.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("ptybridge still running after guest B powered off; output %q", dout.String())
	}
}

// With -new the bridge owns both ptys: guests use ssl1=tty:PATH, and when
// guest B reboots (here: powers off and a new guest opens the same path)
// the cable works again without restarting the bridge.
func TestE2EPtybridgeNewSurvivesReboot(t *testing.T) {
	b := testbed.Get(t)
	bridge := b.Tool(t, "ptybridge")
	dir := t.TempDir()
	_, dout, exited := startBridge(t, bridge, "-new")
	var paths []string
	deadline := time.Now().Add(5 * time.Second)
	for len(paths) < 2 && time.Now().Before(deadline) {
		paths = strings.Fields(dout.String())
		time.Sleep(20 * time.Millisecond)
	}
	if len(paths) != 2 {
		t.Fatalf("ptybridge -new printed %q", dout.String())
	}
	a := bootPeer(t, b, "A", dir, "tty:"+paths[0])
	c := bootPeer(t, b, "B", dir, "tty:"+paths[1])
	a.g.WaitFor("A-READY", 30*time.Second)
	c.g.WaitFor("B-READY", 30*time.Second)
	if got := send(t, a, c, "before-reboot"); got != "before-reboot" {
		t.Fatalf("B received %q", got)
	}
	c.do("stop")
	c.g.WaitFor("TESTBED-DONE", 20*time.Second)
	if err := c.g.Wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		t.Fatalf("ptybridge exited (%v) when guest B went away: %s", err, dout.String())
	default:
	}
	c2 := bootPeer(t, b, "C", dir, "tty:"+paths[1])
	c2.g.WaitFor("C-READY", 30*time.Second)
	if got := send(t, a, c2, "after-reboot"); got != "after-reboot" {
		t.Fatalf("the rebooted guest received %q", got)
	}
	if got := send(t, c2, a, "reply-after-reboot"); got != "reply-after-reboot" {
		t.Fatalf("A received %q from the rebooted guest", got)
	}
}

func waitForLog(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readFile(t, path), want) {
		if time.Now().After(deadline) {
			t.Fatalf("tee log has no %q:\n%s", want, readFile(t, path))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// startBridge runs ptybridge in its own process group, killed at the end
// of the test; exited delivers its exit status.
func startBridge(t *testing.T, argv ...string) (cmd *exec.Cmd, out *syncbuf.Buffer, exited <-chan error) {
	t.Helper()
	out = &syncbuf.Buffer{}
	cmd = exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("ptybridge output:\n%s", out.String())
		}
	})
	return cmd, out, ch
}
