package vswitch_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/umlutils/umlutils/internal/swload"
	vswitch "github.com/umlutils/umlutils/switch"
)

// mgmt talks to a switch's management socket line by line.
type mgmt struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (m *mgmt) do(cmd string) ([]string, string) {
	m.t.Helper()
	_ = m.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(m.c, cmd+"\n"); err != nil {
		m.t.Fatal(err)
	}
	var lines []string
	for {
		l, err := m.br.ReadString('\n')
		if err != nil {
			m.t.Fatalf("%q: %v after %q", cmd, err, lines)
		}
		l = strings.TrimRight(l, "\n")
		if l == "OK" || strings.HasPrefix(l, "ERR ") {
			return lines, l
		}
		lines = append(lines, l)
	}
}

func (m *mgmt) ok(cmd string) []string {
	m.t.Helper()
	lines, end := m.do(cmd)
	if end != "OK" {
		m.t.Fatalf("%q: %s", cmd, end)
	}
	return lines
}

func dialMgmt(t *testing.T, path string) *mgmt {
	t.Helper()
	var c net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if c, err = net.Dial("unix", path); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &mgmt{t: t, c: c, br: bufio.NewReader(c)}
}

// startFull is start plus a management socket, which must exist before Run.
func startFull(t *testing.T, extra func(sw *vswitch.Switch)) (*vswitch.Switch, string, string) {
	t.Helper()
	dir := t.TempDir()
	ctl, mpath := filepath.Join(dir, "sw.ctl"), filepath.Join(dir, "mgmt")
	sw := vswitch.New(vswitch.Config{})
	if err := sw.ListenDaemon(vswitch.DaemonConfig{Control: ctl, Group: -1}); err != nil {
		t.Fatal(err)
	}
	if err := sw.ListenManagement(vswitch.SocketConfig{Path: mpath, Group: -1}); err != nil {
		t.Fatal(err)
	}
	if extra != nil {
		extra(sw)
	}
	runSwitch(t, sw)
	return sw, ctl, mpath
}

func TestManagementListingsAndFaults(t *testing.T) {
	sw, ctl, mpath := startFull(t, nil)
	m := dialMgmt(t, mpath)
	cs := dial(t, ctl, 2)
	waitFor(t, "2 ports", func() bool { return len(sw.Ports()) == 2 })
	a, b := cs[0], cs[1]
	ma, mb := swload.MAC(0, 0), swload.MAC(1, 0)
	send(t, a, swload.Frame(bcast, ma, 0x88b5, 60))
	send(t, b, swload.Frame(ma, mb, 0x88b5, 60))
	recv(a, time.Second)
	recv(b, time.Second)

	var ports []map[string]any
	if err := json.Unmarshal([]byte(m.ok("ports json")[0]), &ports); err != nil || len(ports) != 2 {
		t.Fatalf("ports json: %v %v", ports, err)
	}
	var macs []struct {
		MAC  string `json:"mac"`
		Port int    `json:"port"`
	}
	if err := json.Unmarshal([]byte(m.ok("macs json")[0]), &macs); err != nil || len(macs) != 2 {
		t.Fatalf("macs json: %v %v", macs, err)
	}
	if lines := m.ok("macs"); len(lines) != 3 || !strings.Contains(strings.Join(lines, "\n"), "02:5e:00:00:00:00") {
		t.Fatalf("macs: %q", lines)
	}
	if lines := m.ok("ports"); len(lines) != 3 || !strings.Contains(lines[1], "daemon up") {
		t.Fatalf("ports: %q", lines)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(m.ok("stats json")[0]), &st); err != nil {
		t.Fatal(err)
	}
	// The same snake_case names as the text reply and the other listings.
	for _, k := range []string{"ports", "macs", "hub", "unregistered_drops"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stats json %v lacks %q", st, k)
		}
	}
	idB := sw.Ports()[1].ID
	for _, p := range sw.Ports() {
		if p.MACs == 1 && p.Counters.RxFrames == 1 && p.Counters.TxFrames == 1 {
			continue
		}
		t.Errorf("port %+v", p)
	}
	for _, mm := range macs {
		if mm.MAC == net.HardwareAddr(mb[:]).String() {
			idB = mm.Port
		}
	}
	toB := swload.Frame(mb, ma, 0x88b6, 60)

	// down: nothing reaches B; up: it does again.
	m.ok(fmt.Sprintf("port %d down", idB))
	send(t, a, toB)
	if recv(b, 200*time.Millisecond) != nil {
		t.Fatal("a frame reached a port that is down")
	}
	m.ok(fmt.Sprintf("port %d up", idB))
	send(t, a, toB)
	if recv(b, time.Second) == nil {
		t.Fatal("no frame after port up")
	}

	// loss 50: about half of 1000 frames arrive.
	m.ok(fmt.Sprintf("port %d loss 50", idB))
	got := 0
	for i := 0; i < 1000; i++ {
		send(t, a, toB)
		if i%8 == 7 {
			got += drain(b)
		}
	}
	time.Sleep(50 * time.Millisecond)
	got += drain(b)
	if got < 400 || got > 600 {
		t.Errorf("loss 50: %d of 1000 frames arrived", got)
	}
	m.ok(fmt.Sprintf("port %d clear", idB))

	// delay 100: the frame arrives no sooner than 100 ms later.
	m.ok(fmt.Sprintf("port %d delay 100", idB))
	t0 := time.Now()
	send(t, a, toB)
	if recv(b, 2*time.Second) == nil {
		t.Fatal("delayed frame never arrived")
	}
	if d := time.Since(t0); d < 100*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("delay 100 took %v", d)
	}
	// ... and in the other direction, frames from B.
	m.ok(fmt.Sprintf("port %d clear", idB))
	m.ok(fmt.Sprintf("port %d delay 100 0 in", idB))
	t0 = time.Now()
	send(t, b, swload.Frame(ma, mb, 0x88b6, 60))
	if recv(a, 2*time.Second) == nil {
		t.Fatal("in-delayed frame never arrived")
	}
	if d := time.Since(t0); d < 100*time.Millisecond {
		t.Errorf("delay 100 in took %v", d)
	}

	// Bad input: ERR, connection still usable.
	for _, bad := range []string{"frobnicate", "port x down", "port 99999 down", "port 1", fmt.Sprintf("port %d loss 150", idB),
		fmt.Sprintf("port %d delay -3", idB), fmt.Sprintf("port %d loss NaN", idB), fmt.Sprintf("port %d delay nan", idB), "hub maybe", "pcap", "pcap stop", "ports extra", strings.Repeat("x", 1<<20)} {
		if _, end := m.do(bad); !strings.HasPrefix(end, "ERR ") {
			t.Errorf("%.40q: got %q", bad, end)
		}
	}
	m.ok("stats")

	// hub on: C-less check through the switch state; pcap start/stop.
	m.ok("hub on")
	if !sw.Stats().Hub {
		t.Error("hub on did not switch to hub mode")
	}
	m.ok("hub off")
	pcap := filepath.Join(t.TempDir(), "x.pcap")
	m.ok("pcap start " + pcap)
	send(t, a, swload.Frame(bcast, ma, 0x88b5, 80))
	recv(b, time.Second)
	m.ok("pcap stop")
	if fi, err := os.Stat(pcap); err != nil || fi.Size() < 24+16+80 {
		t.Fatalf("pcap file %v %v", fi, err)
	}
}

func drain(c *swload.Client) int {
	b := mmsgBatch()
	n := 0
	for {
		k, err := b.Recv(c.FD, 0, unix.MSG_DONTWAIT)
		if err != nil || k == 0 {
			return n
		}
		n += k
	}
}

func TestBessAndStreamPorts(t *testing.T) {
	dir := t.TempDir()
	bess, stream := filepath.Join(dir, "bess"), filepath.Join(dir, "stream")
	sw, ctl, _ := startFull(t, func(sw *vswitch.Switch) {
		if err := sw.ListenBess(vswitch.SocketConfig{Path: bess, Group: -1}); err != nil {
			t.Fatal(err)
		}
		if err := sw.ListenStream(vswitch.SocketConfig{Path: stream, Group: -1}); err != nil {
			t.Fatal(err)
		}
	})
	d := dial(t, ctl, 1)[0]
	bc, err := net.Dial("unixpacket", bess)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	sc, err := net.Dial("unix", stream)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	waitFor(t, "3 ports", func() bool { return len(sw.Ports()) == 3 })
	// bess -> daemon and stream
	f := swload.Frame(bcast, swload.MAC(5, 5), 0x88b5, 1518)
	if _, err := bc.Write(f); err != nil {
		t.Fatal(err)
	}
	if got := recv(d, time.Second); len(got) != 1518 {
		t.Fatalf("daemon port got %d bytes from bess", len(got))
	}
	_ = sc.SetReadDeadline(time.Now().Add(2 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(sc, hdr[:]); err != nil || binary.BigEndian.Uint32(hdr[:]) != 1518 {
		t.Fatalf("stream header %v %v", hdr, err)
	}
	body := make([]byte, 1518)
	if _, err := io.ReadFull(sc, body); err != nil {
		t.Fatal(err)
	}
	// stream -> bess (unicast to the learned MAC)
	f2 := swload.Frame(swload.MAC(5, 5), swload.MAC(6, 6), 0x88b6, 100)
	if _, err := sc.Write(append(binary.BigEndian.AppendUint32(nil, 100), f2...)); err != nil {
		t.Fatal(err)
	}
	_ = bc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2000)
	n, err := bc.Read(buf)
	if err != nil || n != 100 {
		t.Fatalf("bess got %d bytes, %v", n, err)
	}
	kinds := map[vswitch.Transport]bool{}
	for _, p := range sw.Ports() {
		kinds[p.Transport] = true
		// The peer is this test process, named after its transport.
		if p.Transport != vswitch.TransportDaemon {
			want := fmt.Sprintf("%s:pid=%d,comm=", p.Transport, os.Getpid())
			if !strings.HasPrefix(p.Peer, want) || p.PeerPID != os.Getpid() {
				t.Errorf("%s port: peer %q (pid %d), want %s...", p.Transport, p.Peer, p.PeerPID, want)
			}
		}
	}
	if !kinds["bess"] || !kinds["stream"] || !kinds["daemon"] {
		t.Fatalf("port kinds %v", kinds)
	}
	bc.Close()
	sc.Close()
	waitFor(t, "bess and stream ports removed", func() bool { return len(sw.Ports()) == 1 })
}

// Idle management connections are bounded: the one past the bound gets an
// ERR line and is closed; once a connection ends, a new one is served.
func TestManagementConnectionBound(t *testing.T) {
	_, _, mpath := startFull(t, nil)
	var held []*mgmt
	for i := 0; i < 128; i++ {
		m := dialMgmt(t, mpath)
		m.ok("stats") // served: counted by the switch before the next dial
		held = append(held, m)
	}
	c, err := net.Dial("unix", mpath)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.HasPrefix(line, "ERR ") {
		t.Fatalf("connection past the bound got %q (%v), want an ERR line", line, err)
	}
	held[0].c.Close()
	for i := 0; ; i++ {
		time.Sleep(20 * time.Millisecond)
		c, err := net.Dial("unix", mpath)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "stats\n")
		_ = c.(*net.UnixConn).CloseWrite()
		reply, _ := io.ReadAll(io.LimitReader(c, 4096))
		c.Close()
		if strings.HasSuffix(string(reply), "OK\n") {
			break
		}
		if i == 50 {
			t.Fatalf("no connection served after one ended: %q", reply)
		}
	}
	if lines, end := held[1].do("stats"); end != "OK" {
		t.Fatalf("held connection: %q %s", lines, end)
	}
}

// A refused command keeps the error behind it: the text after "ERR " is
// unchanged, and errors.Is still finds the cause.
func TestCommandErrorWraps(t *testing.T) {
	sw := vswitch.New(vswitch.Config{})
	_, err := sw.Command("port 999 up")
	var ce *vswitch.CommandError
	if !errors.As(err, &ce) || ce.Reason != "port 999: no such port" || !errors.Is(err, vswitch.ErrNoPort) {
		t.Fatalf("port 999 up: %#v", err)
	}
	_, err = sw.Command("pcap start " + filepath.Join(t.TempDir(), "no", "such", "dir"))
	if !errors.As(err, &ce) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pcap start in a missing directory: %#v", err)
	}
	if _, err := sw.Command("nonsense"); !errors.As(err, &ce) || ce.Err != nil {
		t.Fatalf("nonsense: %#v", err)
	}
}
