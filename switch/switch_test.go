package vswitch_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/mmsg"
	"github.com/umlutils/umlutils/internal/swload"
	"github.com/umlutils/umlutils/internal/syncbuf"
	vswitch "github.com/umlutils/umlutils/switch"
)

type events struct {
	mu sync.Mutex
	l  []vswitch.Event
}

func (e *events) add(ev vswitch.Event) { e.mu.Lock(); e.l = append(e.l, ev); e.mu.Unlock() }

func (e *events) count(k vswitch.EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.l {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// start runs a switch on a temporary control socket until the test ends.
func start(t *testing.T, cfg vswitch.Config) (*vswitch.Switch, string, *events) {
	t.Helper()
	ev := &events{}
	cfg.OnEvent = ev.add
	sw := vswitch.New(cfg)
	ctl := filepath.Join(t.TempDir(), "sw.ctl")
	if err := sw.ListenDaemon(vswitch.DaemonConfig{Control: ctl, Group: -1}); err != nil {
		t.Fatal(err)
	}
	runSwitch(t, sw)
	return sw, ctl, ev
}

// runSwitch runs sw until the test ends.
func runSwitch(t *testing.T, sw *vswitch.Switch) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("switch did not stop within 5 s")
		}
	})
}

func mmsgBatch() *mmsg.RecvBatch { return mmsg.NewRecvBatch(64, 2048) }

func dial(t *testing.T, ctl string, n int) []*swload.Client {
	t.Helper()
	cs, err := swload.Ports(ctl, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	waitFor(t, "ports registered", func() bool { return true })
	return cs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// recv returns the next frame c receives within d, or nil.
func recv(c *swload.Client, d time.Duration) []byte {
	b := mmsg.NewRecvBatch(1, 70000)
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if n, err := c.Recv(b); err == nil && n > 0 {
			return append([]byte(nil), b.Frame(0)...)
		}
	}
	return nil
}

func send(t *testing.T, c *swload.Client, f []byte) {
	t.Helper()
	if err := c.SendTo(f); err != nil {
		t.Fatal(err)
	}
}

func TestLearningAndFlooding(t *testing.T) {
	sw, ctl, ev := start(t, vswitch.Config{})
	cs := dial(t, ctl, 3)
	waitFor(t, "3 ports", func() bool { return len(sw.Ports()) == 3 })
	a, b, c := cs[0], cs[1], cs[2]
	macA, macB := swload.MAC(0, 0), swload.MAC(1, 0)
	// Broadcast from A reaches B and C.
	send(t, a, swload.Frame(bcast, macA, 0x88b5, 60))
	for i, x := range []*swload.Client{b, c} {
		if f := recv(x, time.Second); f == nil {
			t.Fatalf("port %d missed the broadcast", i+1)
		}
	}
	// Unknown unicast floods; B answers, then A->B is unicast only.
	send(t, b, swload.Frame(macA, macB, 0x88b5, 60))
	if f := recv(a, time.Second); f == nil {
		t.Fatal("A missed B's unicast")
	}
	if f := recv(c, 100*time.Millisecond); f != nil {
		t.Fatal("C saw a frame for a learned MAC on A")
	}
	send(t, a, swload.Frame(macB, macA, 0x88b5, 60))
	if f := recv(b, time.Second); f == nil {
		t.Fatal("B missed A's unicast")
	}
	if f := recv(c, 100*time.Millisecond); f != nil {
		t.Fatal("bystander C saw unicast A->B in switch mode")
	}
	if n := ev.count(vswitch.MACLearned); n != 2 {
		t.Errorf("%d MACLearned events, want 2", n)
	}
	macs := sw.MACs()
	if len(macs) != 2 {
		t.Fatalf("MAC table %v", macs)
	}
	// In hub mode C sees it.
	sw.SetHub(true)
	send(t, a, swload.Frame(macB, macA, 0x88b5, 60))
	if f := recv(c, time.Second); f == nil {
		t.Fatal("hub mode: C missed unicast A->B")
	}
	// Counters.
	var rx, tx uint64
	for _, p := range sw.Ports() {
		rx += p.Counters.RxFrames
		tx += p.Counters.TxFrames
	}
	if rx != 4 || tx != 6 {
		t.Errorf("rx %d tx %d, want 4 and 6", rx, tx)
	}
	// A disconnects: its port and MAC go.
	a.Close()
	waitFor(t, "A's port removed", func() bool { return len(sw.Ports()) == 2 && len(sw.MACs()) == 1 })
}

func TestBigFramesIntact(t *testing.T) {
	sw, ctl, _ := start(t, vswitch.Config{})
	cs := dial(t, ctl, 2)
	waitFor(t, "2 ports", func() bool { return len(sw.Ports()) == 2 })
	for _, size := range []int{14, 1514, 1518, 9018, 65535} {
		f := swload.Frame(bcast, swload.MAC(0, 0), 0x8100, size)
		for i := 14; i < size; i++ {
			f[i] = byte(i)
		}
		send(t, cs[0], f)
		got := recv(cs[1], time.Second)
		if !bytes.Equal(got, f) {
			t.Fatalf("%d-byte frame arrived as %d bytes", size, len(got))
		}
	}
	// A runt is dropped and counted.
	send(t, cs[0], make([]byte, 10))
	waitFor(t, "runt counted", func() bool {
		for _, p := range sw.Ports() {
			if p.Counters.Drop(vswitch.DropRunt) == 1 {
				return true
			}
		}
		return false
	})
}

func TestUnregisteredSenderDropped(t *testing.T) {
	sw, ctl, _ := start(t, vswitch.Config{})
	cs := dial(t, ctl, 2)
	waitFor(t, "2 ports", func() bool { return len(sw.Ports()) == 2 })
	// A stranger sends to a port's data socket without registering.
	stranger, err := swload.Dial(ctl, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stranger.Ctl.Close() // unregister, keep the data socket
	waitFor(t, "stranger's port removed", func() bool { return len(sw.Ports()) == 2 })
	if err := stranger.Unconnect(); err != nil {
		t.Fatal(err)
	}
	// Its old port's socket is gone with the port.
	if mmsg.SendTo(stranger.FD, swload.Frame(bcast, swload.MAC(9, 9), 0x88b5, 60), 0, stranger.Switch) == nil {
		t.Error("the data socket of a removed port still takes frames")
	}
	if err := mmsg.SendTo(stranger.FD, swload.Frame(bcast, swload.MAC(9, 9), 0x88b5, 60), 0, cs[0].Switch); err != nil {
		t.Fatal(err)
	}
	if f := recv(cs[1], 200*time.Millisecond); f != nil {
		t.Fatal("a frame from an unregistered sender was flooded")
	}
	waitFor(t, "drop counted", func() bool { return sw.Stats().Unregistered == 1 })
}

// On the shared data socket (protocol 0 clients send there), a datagram
// from an address that registered no port is dropped and counted.
func TestUnregisteredOnSharedSocket(t *testing.T) {
	dir := t.TempDir()
	ctl, data := filepath.Join(dir, "c"), filepath.Join(dir, "d")
	sw := vswitch.New(vswitch.Config{})
	if err := sw.ListenDaemon(vswitch.DaemonConfig{Control: ctl, Data: data, Group: -1}); err != nil {
		t.Fatal(err)
	}
	runSwitch(t, sw)
	c, err := swload.Dial(ctl, 0, data)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "1 port", func() bool { return len(sw.Ports()) == 1 })
	c.Ctl.Close()
	waitFor(t, "port removed", func() bool { return len(sw.Ports()) == 0 })
	send(t, c, swload.Frame(bcast, swload.MAC(9, 9), 0x88b5, 60))
	waitFor(t, "drop counted", func() bool { return sw.Stats().Unregistered == 1 })
}

func TestGarbageCostsOnlyThatConnection(t *testing.T) {
	sw, ctl, ev := start(t, vswitch.Config{})
	cs := dial(t, ctl, 2)
	waitFor(t, "2 ports", func() bool { return len(sw.Ports()) == 2 })
	fdsBefore := countFDs(t)
	v2 := make([]byte, 124)
	binary.LittleEndian.PutUint32(v2, vswitch.Magic)
	binary.LittleEndian.PutUint32(v2[4:], 2)
	v9 := append([]byte(nil), v2...)
	binary.LittleEndian.PutUint32(v9[4:], 9)
	bad := [][]byte{v2, v9, []byte("x"), make([]byte, 4096), []byte("GET / HTTP/1.0\r\n\r\n"), nil}
	for i := 0; i < 1000; i++ {
		c, err := net.Dial("unix", ctl)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if b := bad[i%len(bad)]; b != nil {
			_, _ = c.Write(b)
		}
		c.Close()
	}
	// Still accepting, still forwarding.
	extra := dial(t, ctl, 1)
	waitFor(t, "3 ports", func() bool { return len(sw.Ports()) == 3 })
	send(t, cs[0], swload.Frame(bcast, swload.MAC(0, 0), 0x88b5, 60))
	for _, c := range []*swload.Client{cs[1], extra[0]} {
		if recv(c, time.Second) == nil {
			t.Fatal("forwarding broken after the garbage")
		}
	}
	waitFor(t, "rejections", func() bool { return ev.count(vswitch.RequestRejected) >= 800 })
	waitFor(t, "no fd leak", func() bool { return countFDs(t) <= fdsBefore+5 })
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestSlowPortDoesNotStallOthers(t *testing.T) {
	// 2000 broadcasts at once: no storm control here.
	sw, ctl, _ := start(t, vswitch.Config{StormRate: -1})
	cs := dial(t, ctl, 3)
	waitFor(t, "3 ports", func() bool { return len(sw.Ports()) == 3 })
	// Port 2 never reads (and, like a UML, has a bounded queue). Port 0
	// floods 2000 broadcasts; port 1 drains.
	if err := cs[2].Unconnect(); err != nil {
		t.Fatal(err)
	}
	got := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := mmsg.NewRecvBatch(64, 2048)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n, err := cs[1].Recv(b); err == nil {
				got += n
			}
		}
	}()
	f := swload.Frame(bcast, swload.MAC(0, 0), 0x88b5, 60)
	for i := 0; i < 2000; i++ {
		send(t, cs[0], f)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done
	if got < 1900 {
		t.Errorf("the draining port got %d of 2000 frames", got)
	}
	var full uint64
	for _, p := range sw.Ports() {
		full += p.Counters.Drop(vswitch.DropPeerFull)
	}
	if full == 0 {
		t.Errorf("no peer_full drops counted for the port that never reads")
	}
}

func TestStaleAndLiveSocket(t *testing.T) {
	dir := t.TempDir()
	ctl := filepath.Join(dir, "sw.ctl")
	// A stale socket file: bound, then its listener gone.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: ctl, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	sw := vswitch.New(vswitch.Config{})
	if err := sw.ListenDaemon(vswitch.DaemonConfig{Control: ctl, Group: -1}); err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	// A second switch on the same path is refused.
	sw2 := vswitch.New(vswitch.Config{})
	err = sw2.ListenDaemon(vswitch.DaemonConfig{Control: ctl, Group: -1})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("live socket: got %v", err)
	}
	sw.Close()
	if _, err := os.Stat(ctl); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
	// A regular file is never removed.
	if err := os.WriteFile(ctl, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := vswitch.New(vswitch.Config{}).ListenDaemon(vswitch.DaemonConfig{Control: ctl, Group: -1}); err == nil {
		t.Fatal("a regular file in the way was accepted")
	}
	if b, _ := os.ReadFile(ctl); string(b) != "keep" {
		t.Fatal("a regular file was clobbered")
	}
}

func TestOlderProtocols(t *testing.T) {
	sw, ctl, _ := start(t, vswitch.Config{})
	c1, err := swload.Dial(ctl, 1, "")
	if err != nil {
		t.Fatalf("v1: %v", err)
	}
	defer c1.Close()
	c3, err := swload.Dial(ctl, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	waitFor(t, "2 ports", func() bool { return len(sw.Ports()) == 2 })
	send(t, c1, swload.Frame(bcast, swload.MAC(0, 0), 0x88b5, 60))
	if recv(c3, time.Second) == nil {
		t.Fatal("v1 port's frame not forwarded")
	}
}

func TestMACTableBoundAndAging(t *testing.T) {
	sw, ctl, _ := start(t, vswitch.Config{MACTableSize: 8, MACAge: 300 * time.Millisecond})
	cs := dial(t, ctl, 2)
	waitFor(t, "2 ports", func() bool { return len(sw.Ports()) == 2 })
	for j := 0; j < 20; j++ {
		send(t, cs[0], swload.Frame(bcast, swload.MAC(0, j), 0x88b5, 60))
	}
	waitFor(t, "frames in", func() bool { return sw.Ports()[0].Counters.RxFrames+sw.Ports()[1].Counters.RxFrames == 20 })
	if n := sw.Stats().MACs; n != 8 {
		t.Fatalf("table holds %d entries, bound is 8", n)
	}
	macs := sw.MACs()
	if macs[len(macs)-1].MAC[5] != 19 {
		t.Errorf("newest address evicted: %v", macs)
	}
	time.Sleep(400 * time.Millisecond)
	if n := len(sw.MACs()); n != 0 {
		t.Errorf("%d entries survived aging", n)
	}
}

func TestPcapCapture(t *testing.T) {
	sw, ctl, _ := start(t, vswitch.Config{})
	var buf syncbuf.Buffer
	c, err := vswitch.NewPcapCapture(&buf)
	if err != nil {
		t.Fatal(err)
	}
	sw.SetCapture(c)
	cs := dial(t, ctl, 2)
	waitFor(t, "2 ports", func() bool { return len(sw.Ports()) == 2 })
	send(t, cs[0], swload.Frame(bcast, swload.MAC(0, 0), 0x88b5, 100))
	waitFor(t, "capture", func() bool { return buf.Len() >= 24+16+100 })
	b := buf.Bytes()
	if binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(b[20:]) != 1 {
		t.Fatalf("not a pcap file with link type Ethernet: % x", b[:24])
	}
	if l := binary.LittleEndian.Uint32(b[24+8:]); l != 100 {
		t.Fatalf("captured length %d, want 100", l)
	}
}

// The data loop sleeps in recvmmsg without handing back its P; a garbage
// collection (which must stop every goroutine) still completes promptly
// because the runtime's preemption signal interrupts that call.
func TestGCNotBlockedByDataLoop(t *testing.T) {
	start(t, vswitch.Config{})
	time.Sleep(300 * time.Millisecond) // let the loop settle into recvmmsg
	// Were the loop not interrupted, each collection would wait for the
	// data socket's 200 ms receive timeout. The median keeps a busy
	// machine's scheduling spikes out of the verdict.
	var ds []time.Duration
	for i := 0; i < 7; i++ {
		t0 := time.Now()
		runtime.GC()
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if ds[3] > 100*time.Millisecond {
		t.Fatalf("median GC took %v with the data loop asleep (all: %v)", ds[3], ds)
	}
}
