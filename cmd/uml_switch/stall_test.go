package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/umlutils/umlutils/internal/mmsg"
	"github.com/umlutils/umlutils/internal/swload"
	"github.com/umlutils/umlutils/internal/syncbuf"
	"github.com/umlutils/umlutils/internal/testbed"
)

// stallHelper runs the switch as a child process (this test binary) with
// stdout on a pipe the test never reads; it returns the child, its
// management socket and control socket.
func stallHelper(t *testing.T, stdout *os.File, args ...string) (*exec.Cmd, string, string, *syncbuf.Buffer) {
	t.Helper()
	dir := t.TempDir()
	ctl, mgmt := filepath.Join(dir, "sw.ctl"), filepath.Join(dir, "mgmt")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBrokenStdoutPipe$")
	cmd.Env = append(os.Environ(), "UMLUTILS_SWITCH_HELPER=1",
		"UMLUTILS_SWITCH_ARGS="+strings.Join(append([]string{"-unix", ctl, "-mgmt", mgmt}, args...), " "))
	cmd.Stdout = stdout
	errOut := &syncbuf.Buffer{}
	cmd.Stderr = errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testbed.WaitForFile(t, ctl, 5*time.Second)
	testbed.WaitForFile(t, mgmt, 5*time.Second)
	return cmd, ctl, mgmt, errOut
}

func mgmtDo(t *testing.T, path, cmd string) []string {
	t.Helper()
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintln(c, cmd)
	br := bufio.NewReader(c)
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v (management stalled?)", cmd, err)
		}
		l = strings.TrimSpace(l)
		if l == "OK" {
			return lines
		}
		if strings.HasPrefix(l, "ERR") {
			t.Fatalf("%s: %s", cmd, l)
		}
		lines = append(lines, l)
	}
}

// pingPong has a and b exchange n frames and returns how many arrived.
func pingPong(a, b *swload.Client, n, size int) int {
	ma, mb := swload.MAC(0, 1), swload.MAC(1, 1)
	ab, ba := swload.Frame(mb, ma, 0x88b6, size), swload.Frame(ma, mb, 0x88b6, size)
	_ = a.SendTo(swload.Frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ma, 0x88b5, 60))
	_ = b.SendTo(swload.Frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mb, 0x88b5, 60))
	time.Sleep(50 * time.Millisecond)
	rb := mmsg.NewRecvBatch(64, 2048)
	for _, c := range []*swload.Client{a, b} {
		for {
			if k, err := rb.Recv(c.FD, 0, unix.MSG_DONTWAIT); err != nil || k == 0 {
				break
			}
		}
	}
	got := 0
	for i := 0; i < n; i++ {
		_ = a.SendTo(ab)
		if k, err := b.Recv(rb); err == nil {
			got += k
		}
		_ = b.SendTo(ba)
		if k, err := a.Recv(rb); err == nil {
			got += k
		}
	}
	return got
}

// A stdout nobody reads (a terminal under scroll lock, a paused pager)
// must not stop the switch: with 30000 status lines owed, ports still
// forward, management answers, the dropped lines are counted and
// reported once on stderr, and SIGTERM still cleans up.
func TestStdoutNeverRead(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() // never read
	cmd, ctl, mgmt, errOut := stallHelper(t, w)
	w.Close()
	cs, err := swload.Ports(ctl, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	// A flood of fresh sources: one " Addr: ... New port N" line each.
	var stop atomic.Bool
	floodDone := make(chan int)
	go func() {
		n := 0
		for ; n < 30000 && !stop.Load(); n++ {
			_ = cs[2].SendTo(swload.Frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, swload.MAC(2, n), 0x88b5, 60))
		}
		floodDone <- n
	}()
	rb := mmsg.NewRecvBatch(64, 2048)
	deadline := time.Now().Add(20 * time.Second)
	for {
		drops := 0.0
		var st map[string]any
		if err := json.Unmarshal([]byte(mgmtDo(t, mgmt, "stats json")[0]), &st); err == nil {
			drops, _ = st["status_drops"].(float64)
		}
		for _, c := range cs[:2] {
			for {
				if k, err := rb.Recv(c.FD, 0, unix.MSG_DONTWAIT); err != nil || k == 0 {
					break
				}
			}
		}
		if drops > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status drops counted: %v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := pingPong(cs[0], cs[1], 200, 60); got < 390 {
		t.Errorf("with stdout unread, %d of 400 frames arrived", got)
	}
	stop.Store(true)
	<-floodDone
	if n := strings.Count(errOut.String(), "status output is not being read"); n != 1 {
		t.Errorf("warning printed %d times: %q", n, errOut.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("switch did not end on SIGTERM with its stdout blocked")
	}
	if _, err := os.Stat(ctl); !os.IsNotExist(err) {
		t.Errorf("control socket left behind")
	}
}

// -pcap - onto a stdout nobody reads: forwarding and management go on,
// capture records are dropped and counted.
func TestPcapStdoutNeverRead(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, ctl, mgmt, errOut := stallHelper(t, w, "-pcap", "-")
	w.Close()
	cs, err := swload.Ports(ctl, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	big := 0
	for round := 0; round < 20; round++ {
		big += pingPong(cs[0], cs[1], 500, 1400) // 28 MB in all
	}
	if big < 19000 {
		t.Errorf("with the pcap stdout unread, %d of 20000 frames arrived", big)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(mgmtDo(t, mgmt, "stats json")[0]), &st); err != nil {
		t.Fatal(err)
	}
	if d, _ := st["capture_drops"].(float64); d == 0 {
		t.Errorf("no capture drops: %v", st)
	}
	waitFor := time.Now().Add(2 * time.Second)
	for !strings.Contains(errOut.String(), "capture reader is not keeping up") && time.Now().Before(waitFor) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(errOut.String(), "capture reader is not keeping up"); n != 1 {
		t.Errorf("capture warning printed %d times: %q", n, errOut.String())
	}
}

// -port-macs, -port-macs-action and -storm reach every port.
func TestPortSecurityAndStormFlags(t *testing.T) {
	dir := t.TempDir()
	ctl, mgmt := filepath.Join(dir, "sw.ctl"), filepath.Join(dir, "mgmt")
	_, errOut, stop := startRun(t, "-q", "-unix", ctl, "-mgmt", mgmt, "-port-macs", "2", "-port-macs-action", "shutdown", "-storm", "0")
	testbed.WaitForFile(t, mgmt, 5*time.Second)
	cs, err := swload.Ports(ctl, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer cs[0].Close()
	var ports []struct {
		MaxMACs   int    `json:"max_macs"`
		MACAction string `json:"mac_action"`
		StormRate int    `json:"storm_rate"`
		State     string `json:"state"`
	}
	if err := json.Unmarshal([]byte(mgmtDo(t, mgmt, "ports json")[0]), &ports); err != nil {
		t.Fatal(err)
	}
	if len(ports) != 1 || ports[0].MaxMACs != 2 || ports[0].MACAction != "shutdown" || ports[0].StormRate != 0 || ports[0].State != "up" {
		t.Fatalf("ports json: %+v", ports)
	}
	if l := mgmtDo(t, mgmt, "ports")[1]; !strings.Contains(l, "maxmacs=2/shutdown") {
		t.Errorf("ports: %q", l)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
