package vswitch_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/swload"
	vswitch "github.com/umlutils/umlutils/switch"
)

func TestParseVXLANSpec(t *testing.T) {
	good := map[string]vswitch.VXLANConfig{
		"vni=42,local=10.0.0.1,remote=10.0.0.2": {VNI: 42, Local: netip.MustParseAddrPort("10.0.0.1:4789"),
			Remotes: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:4789")}},
		"local=10.0.0.1:5000,vni=0,remote=10.0.0.2:8472,remote=10.0.0.3": {VNI: 0, Local: netip.MustParseAddrPort("10.0.0.1:5000"),
			Remotes: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:8472"), netip.MustParseAddrPort("10.0.0.3:4789")}},
		"vni=16777215,local=[fd00::1]:4790,remote=fd00::2": {VNI: 16777215, Local: netip.MustParseAddrPort("[fd00::1]:4790"),
			Remotes: []netip.AddrPort{netip.MustParseAddrPort("[fd00::2]:4789")}},
		"vni=1,local=0.0.0.0:0": {VNI: 1, Local: netip.MustParseAddrPort("0.0.0.0:0")},
	}
	for spec, want := range good {
		got, err := vswitch.ParseVXLANSpec(spec)
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		if got.VNI != want.VNI || got.Local != want.Local || len(got.Remotes) != len(want.Remotes) {
			t.Errorf("%q: got %+v, want %+v", spec, got, want)
			continue
		}
		for i := range want.Remotes {
			if got.Remotes[i] != want.Remotes[i] {
				t.Errorf("%q: remote %d is %v, want %v", spec, i, got.Remotes[i], want.Remotes[i])
			}
		}
	}
	for _, spec := range []string{"", "vni=1", "local=10.0.0.1", "vni=16777216,local=10.0.0.1", "vni=-1,local=10.0.0.1",
		"vni=1,local=10.0.0.1,remote=0.0.0.0", "vni=1,local=10.0.0.1,remote=10.0.0.2:0", "vni=1,local=10.0.0.1,remote=fd00::2",
		"vni=1,local=10.0.0.1,remote=239.1.1.1", "vni=1,local=10.0.0.1,remote=host.example", "vni=1,vni=2,local=10.0.0.1",
		"vni=1,local=10.0.0.1,mtu=1450", "vni=1,local=10.0.0.1,remote", "vni=1,local=fe80::1%eth0"} {
		_, err := vswitch.ParseVXLANSpec(spec)
		var se *vswitch.SpecError
		if !errors.As(err, &se) {
			t.Errorf("%q: want a *SpecError, got %v", spec, err)
		}
	}
}

func TestVXLANHeader(t *testing.T) {
	h := vswitch.AppendVXLANHeader(nil, 0xabcdef)
	if !bytes.Equal(h, []byte{0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0}) {
		t.Fatalf("header % x", h)
	}
	// Reserved bits and other flags are ignored on receipt.
	vni, frame, err := vswitch.ParseVXLAN([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 42, 0xff, 1, 2})
	if err != nil || vni != 42 || !bytes.Equal(frame, []byte{1, 2}) {
		t.Fatalf("reserved bits set: vni %d frame %v err %v", vni, frame, err)
	}
	if _, _, err := vswitch.ParseVXLAN([]byte{0xf7, 0, 0, 0, 0, 0, 42, 0}); !errors.Is(err, vswitch.ErrVXLANNoVNI) {
		t.Fatalf("no I flag: %v", err)
	}
	if _, _, err := vswitch.ParseVXLAN([]byte{8, 0, 0, 0, 0, 0, 42}); !errors.Is(err, vswitch.ErrVXLANTruncated) {
		t.Fatalf("7 bytes: %v", err)
	}
}

// FuzzVXLANHeader: any datagram parses or fails with a typed error, never
// panics, and what parses re-encodes to the same VNI and frame.
func FuzzVXLANHeader(f *testing.F) {
	f.Add(vswitch.AppendVXLANHeader(nil, 42))
	f.Add(append(vswitch.AppendVXLANHeader(nil, 1), make([]byte, 14)...))
	f.Add([]byte{0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		vni, frame, err := vswitch.ParseVXLAN(b)
		if err != nil {
			if !errors.Is(err, vswitch.ErrVXLANNoVNI) && !errors.Is(err, vswitch.ErrVXLANTruncated) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if vni > vswitch.MaxVNI {
			t.Fatalf("vni %d over 24 bits", vni)
		}
		again := append(vswitch.AppendVXLANHeader(nil, vni), frame...)
		v2, f2, err := vswitch.ParseVXLAN(again)
		if err != nil || v2 != vni || !bytes.Equal(f2, frame) {
			t.Fatalf("re-encoding: vni %d->%d, err %v", vni, v2, err)
		}
	})
}

// udpAt binds a UDP socket on a loopback address (any of 127/8 is local).
func udpAt(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func apOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// readVXLAN returns the next datagram c gets within d, or nil.
func readVXLAN(c *net.UDPConn, d time.Duration) []byte {
	b := make([]byte, 70000)
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, _, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return nil
	}
	return b[:n]
}

func vxlanOf(t *testing.T, m *mgmt) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(m.ok("vxlan json")[0]), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// remoteStat reads one counter of the remote at addr ("rx_frames", or a
// drop reason), or the uplink's stranger_drops when addr is "".
func remoteStat(t *testing.T, m *mgmt, addr, key string) float64 {
	t.Helper()
	u := vxlanOf(t, m)[0]
	if addr == "" {
		return u["stranger_drops"].(float64)
	}
	for _, r := range u["remotes"].([]any) {
		r := r.(map[string]any)
		if r["remote"] == addr {
			if v, ok := r[key]; ok {
				return v.(float64)
			}
			return r["drops"].(map[string]any)[key].(float64)
		}
	}
	t.Fatalf("no remote %s in %v", addr, u)
	return 0
}

// A switch with one local port and a VXLAN uplink to two remotes (plain
// UDP sockets here; kernels and other switches in the e2e tests).
func TestVXLANReplicationLearningSplitHorizon(t *testing.T) {
	ra, rb := udpAt(t, "127.0.0.2:0"), udpAt(t, "127.0.0.3:0")
	raOther := udpAt(t, "127.0.0.2:0") // same address, another source port
	stranger := udpAt(t, "127.0.0.9:0")
	const vni = 4242
	var local netip.AddrPort
	sw, ctl, mpath := startFull(t, func(sw *vswitch.Switch) {
		p, err := sw.AddVXLAN(vswitch.VXLANConfig{VNI: vni, Local: netip.MustParseAddrPort("127.0.0.1:0"),
			Remotes: []netip.AddrPort{apOf(ra), apOf(rb)}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Transport != vswitch.TransportVXLAN {
			t.Fatalf("port transport %q", p.Transport)
		}
		local = sw.VXLAN()[0].Local
	})
	if local.Port() == 0 {
		t.Fatal("local port not reported")
	}
	m := dialMgmt(t, mpath)
	l := dial(t, ctl, 1)[0]
	waitFor(t, "2 ports", func() bool { return len(sw.Ports()) == 2 })
	macL, macA, macB := swload.MAC(1, 0), swload.MAC(2, 0), swload.MAC(3, 0)
	to := net.UDPAddrFromAddrPort(local)
	encap := func(v uint32, f []byte) []byte { return append(vswitch.AppendVXLANHeader(nil, v), f...) }

	// Head-end replication: a broadcast reaches both remotes, with the VNI.
	fb := swload.Frame(bcast, macL, 0x88b5, 60)
	send(t, l, fb)
	for _, r := range []*net.UDPConn{ra, rb} {
		got := readVXLAN(r, time.Second)
		v, f, err := vswitch.ParseVXLAN(got)
		if err != nil || v != vni || !bytes.Equal(f, fb) {
			t.Fatalf("remote %v got % x (vni %d, err %v)", apOf(r), got, v, err)
		}
	}
	// A frame from remote A, sent from another source port, reaches the
	// local port and never remote B (split horizon).
	fa := swload.Frame(bcast, macA, 0x88b5, 60)
	if _, err := raOther.WriteToUDP(encap(vni, fa), to); err != nil {
		t.Fatal(err)
	}
	if got := recv(l, time.Second); !bytes.Equal(got, fa) {
		t.Fatalf("local port got % x", got)
	}
	if got := readVXLAN(rb, 200*time.Millisecond); got != nil {
		t.Fatalf("a frame from remote A went to remote B: % x", got)
	}
	// Unicast to A's address goes to A only.
	fu := swload.Frame(macA, macL, 0x88b6, 100)
	send(t, l, fu)
	if got := readVXLAN(ra, time.Second); got == nil || !bytes.Equal(got[8:], fu) {
		t.Fatalf("unicast to A: A got % x", got)
	}
	if got := readVXLAN(rb, 200*time.Millisecond); got != nil {
		t.Fatalf("unicast to A reached B: % x", got)
	}
	// B to A's address: behind the same port; nobody gets it.
	if _, err := rb.WriteToUDP(encap(vni, swload.Frame(macA, macB, 0x88b6, 60)), to); err != nil {
		t.Fatal(err)
	}
	if got := readVXLAN(ra, 200*time.Millisecond); got != nil {
		t.Fatalf("B's frame to A's address was sent to A: % x", got)
	}
	if got := recv(l, 100*time.Millisecond); got != nil {
		t.Fatalf("B's frame to A's address reached the local port: % x", got)
	}

	// Bad input: dropped, counted, never forwarded.
	bad := []struct {
		from *net.UDPConn
		b    []byte
		addr string
		key  string
	}{
		{stranger, encap(vni, swload.Frame(bcast, swload.MAC(9, 0), 0x88b5, 60)), "", "stranger_drops"},
		{ra, encap(vni+1, swload.Frame(bcast, swload.MAC(9, 1), 0x88b5, 60)), apOf(ra).String(), "wrong_vni"},
		{ra, []byte{8, 0, 0, 0, 0}, apOf(ra).String(), "malformed"},
		{ra, append([]byte{0, 0, 0, 0, 0, 0x10, 0x92, 0}, swload.Frame(bcast, swload.MAC(9, 2), 0x88b5, 60)...), apOf(ra).String(), "malformed"},
		{ra, encap(vni, make([]byte, 13)), apOf(ra).String(), "malformed"},
		{ra, nil, apOf(ra).String(), "malformed"},
	}
	want := map[string]float64{}
	for _, c := range bad {
		if _, err := c.from.WriteToUDP(c.b, to); err != nil {
			t.Fatal(err)
		}
		want[c.addr+"/"+c.key]++
		k := c
		waitFor(t, k.key, func() bool { return remoteStat(t, m, k.addr, k.key) == want[k.addr+"/"+k.key] })
	}
	if got := recv(l, 200*time.Millisecond); got != nil {
		t.Fatalf("bad input was forwarded: % x", got)
	}
	if got := readVXLAN(rb, 100*time.Millisecond); got != nil {
		t.Fatalf("bad input was forwarded to B: % x", got)
	}
	if n := remoteStat(t, m, apOf(ra).String(), "rx_frames"); n != 1 {
		t.Fatalf("remote A rx_frames %v, want 1", n)
	}
	if n := remoteStat(t, m, apOf(ra).String(), "macs"); n != 1 {
		t.Fatalf("remote A macs %v, want 1", n)
	}

	// A frame too big for a UDP datagram (65507 bytes over IPv4) is an
	// oversize drop, on the remotes and on the port.
	big := swload.Frame(bcast, macL, 0x88b5, 65500)
	send(t, l, big)
	waitFor(t, "oversize", func() bool {
		return remoteStat(t, m, apOf(ra).String(), "oversize") == 1 && remoteStat(t, m, apOf(rb).String(), "oversize") == 1
	})
	waitFor(t, "port oversize", func() bool {
		for _, p := range sw.Ports() {
			if p.Transport == vswitch.TransportVXLAN && p.Counters.Drop(vswitch.DropOversize) == 1 {
				return true
			}
		}
		return false
	})

	// Remotes at run time.
	m.ok("vxlan del " + apOf(ra).String())
	if _, end := m.do("vxlan del " + apOf(ra).String()); !strings.HasPrefix(end, "ERR ") {
		t.Fatalf("deleting a missing remote: %s", end)
	}
	send(t, l, fb)
	if got := readVXLAN(rb, time.Second); got == nil {
		t.Fatal("B got nothing after A was removed")
	}
	if got := readVXLAN(ra, 200*time.Millisecond); got != nil {
		t.Fatal("a removed remote still gets frames")
	}
	// Frames from a removed remote are a stranger's.
	if _, err := ra.WriteToUDP(encap(vni, fa), to); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "removed remote is a stranger", func() bool { return remoteStat(t, m, "", "") == 2 })
	m.ok("vxlan add " + apOf(ra).String())
	for _, c := range []string{"vxlan add " + apOf(ra).String(), "vxlan add nowhere", "vxlan add 127.0.0.2:0", "vxlan add ::1",
		"vxlan add 127.0.0.5 vni 1", "vxlan add 127.0.0.5 vni x", "vxlan frob", "vxlan add"} {
		if _, end := m.do(c); !strings.HasPrefix(end, "ERR ") {
			t.Errorf("%q: %s", c, end)
		}
	}
	m.ok("vxlan add 127.0.0.5:4790 vni 4242")
	lines := m.ok("vxlan")
	if len(lines) != 5 || !strings.HasPrefix(lines[1], "4242 ") || !strings.Contains(lines[1], "stranger=2") {
		t.Fatalf("vxlan listing:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(strings.Join(m.ok("help"), "\n"), "vxlan add|del") {
		t.Error("help lacks vxlan")
	}
}

// Two switches in one process joined over loopback VXLAN; the second
// learns of the first only through "vxlan add" at run time. (Two switches
// in one process each park a thread holding a P in their daemon data
// loops, so with GOMAXPROCS 2 this runs at preemption speed; separate
// processes, as in the e2e tests, do not.)
func TestTwoSwitchesOverVXLAN(t *testing.T) {
	var aLocal netip.AddrPort
	swA, ctlA, mpathA := startFull(t, func(sw *vswitch.Switch) {
		if _, err := sw.AddVXLAN(vswitch.VXLANConfig{VNI: 7, Local: netip.MustParseAddrPort("127.0.0.11:0")}); err != nil {
			t.Fatal(err)
		}
		aLocal = sw.VXLAN()[0].Local
	})
	var bLocal netip.AddrPort
	swB, ctlB, _ := startFull(t, func(sw *vswitch.Switch) {
		if _, err := sw.AddVXLAN(vswitch.VXLANConfig{VNI: 7, Local: netip.MustParseAddrPort("127.0.0.12:0"),
			Remotes: []netip.AddrPort{aLocal}}); err != nil {
			t.Fatal(err)
		}
		bLocal = sw.VXLAN()[0].Local
	})
	dialMgmt(t, mpathA).ok("vxlan add " + bLocal.String())
	a, b := dial(t, ctlA, 1)[0], dial(t, ctlB, 1)[0]
	waitFor(t, "ports", func() bool { return len(swA.Ports()) == 2 && len(swB.Ports()) == 2 })
	macA, macB := swload.MAC(1, 1), swload.MAC(2, 2)
	fa := swload.Frame(bcast, macA, 0x88b5, 1514)
	send(t, a, fa)
	if got := recv(b, time.Second); !bytes.Equal(got, fa) {
		t.Fatalf("B got % x", got)
	}
	fb := swload.Frame(macA, macB, 0x88b6, 64)
	send(t, b, fb)
	if got := recv(a, time.Second); !bytes.Equal(got, fb) {
		t.Fatalf("A got % x", got)
	}
	for i := 0; i < 100; i++ {
		f := swload.Frame(macB, macA, 0x88b6, 64+i)
		send(t, a, f)
		if got := recv(b, time.Second); !bytes.Equal(got, f) {
			t.Fatalf("frame %d: B got % x", i, got)
		}
	}
	// The sender counts a datagram once sendmsg returns, which may be
	// after the receiving switch has delivered it.
	waitFor(t, "A's remote counters", func() bool {
		r := swA.VXLAN()[0].Remotes[0]
		return r.TxFrames == 101 && r.RxFrames == 1 && r.MACs == 1
	})
	// Adding a second uplink on the same local endpoint is refused, and
	// after Run no uplink may be added.
	if _, err := swA.AddVXLAN(vswitch.VXLANConfig{VNI: 8, Local: aLocal}); err == nil {
		t.Fatal("a second uplink on the same local endpoint was accepted")
	}
	if _, err := swA.AddVXLAN(vswitch.VXLANConfig{VNI: 8, Local: netip.MustParseAddrPort("127.0.0.13:0")}); !errors.Is(err, vswitch.ErrVXLANRunning) {
		t.Fatalf("AddVXLAN while running: %v", err)
	}
}

// A local endpoint that cannot be bound is an error naming it.
func TestVXLANBindError(t *testing.T) {
	c := udpAt(t, "127.0.0.1:0")
	sw := vswitch.New(vswitch.Config{})
	defer sw.Close()
	_, err := sw.AddVXLAN(vswitch.VXLANConfig{VNI: 1, Local: apOf(c)})
	if err == nil || !strings.Contains(err.Error(), apOf(c).String()) {
		t.Fatalf("binding a used port: %v", err)
	}
}

// The uplink's table of which remote an address lives behind is bounded by
// the switch's MAC table size; an address it forgot is flooded to every
// remote, never lost.
func TestVXLANLearningBound(t *testing.T) {
	ra, rb := udpAt(t, "127.0.0.31:0"), udpAt(t, "127.0.0.32:0")
	sw := vswitch.New(vswitch.Config{MACTableSize: 4})
	ctl := filepath.Join(t.TempDir(), "sw.ctl")
	if err := sw.ListenDaemon(vswitch.DaemonConfig{Control: ctl, Group: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.AddVXLAN(vswitch.VXLANConfig{VNI: 9, Local: netip.MustParseAddrPort("127.0.0.30:0"),
		Remotes: []netip.AddrPort{apOf(ra), apOf(rb)}}); err != nil {
		t.Fatal(err)
	}
	to := net.UDPAddrFromAddrPort(sw.VXLAN()[0].Local)
	runSwitch(t, sw)
	l := dial(t, ctl, 1)[0]
	waitFor(t, "2 ports", func() bool { return len(sw.Ports()) == 2 })
	for i := 0; i < 10; i++ {
		f := append(vswitch.AppendVXLANHeader(nil, 9), swload.Frame(bcast, swload.MAC(5, i), 0x88b5, 60)...)
		if _, err := ra.WriteToUDP(f, to); err != nil {
			t.Fatal(err)
		}
		if recv(l, time.Second) == nil {
			t.Fatalf("frame %d not forwarded", i)
		}
	}
	if n := sw.VXLAN()[0].Remotes[0].MACs; n > 4 || n < 1 {
		t.Fatalf("%d addresses learned behind remote A, bound 4", n)
	}
	// The first address is long forgotten by both tables: flooded.
	send(t, l, swload.Frame(swload.MAC(5, 0), swload.MAC(1, 0), 0x88b6, 60))
	for _, r := range []*net.UDPConn{ra, rb} {
		if readVXLAN(r, time.Second) == nil {
			t.Fatalf("a frame to a forgotten address did not reach %v", apOf(r))
		}
	}
	// The last is known: A only.
	send(t, l, swload.Frame(swload.MAC(5, 9), swload.MAC(1, 0), 0x88b6, 60))
	if readVXLAN(ra, time.Second) == nil {
		t.Fatal("A did not get a frame to its address")
	}
	if got := readVXLAN(rb, 200*time.Millisecond); got != nil {
		t.Fatal("B got a frame to A's address")
	}
}

// An IPv6 underlay.
func TestVXLANIPv6(t *testing.T) {
	r, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer r.Close()
	sw, ctl, _ := startFull(t, func(sw *vswitch.Switch) {
		if _, err := sw.AddVXLAN(vswitch.VXLANConfig{VNI: 6, Local: netip.MustParseAddrPort("[::1]:0"),
			Remotes: []netip.AddrPort{apOf(r)}}); err != nil {
			t.Fatal(err)
		}
	})
	l := dial(t, ctl, 1)[0]
	waitFor(t, "2 ports", func() bool { return len(sw.Ports()) == 2 })
	f := swload.Frame(bcast, swload.MAC(1, 0), 0x88b5, 1514)
	send(t, l, f)
	got := readVXLAN(r, time.Second)
	if v, inner, err := vswitch.ParseVXLAN(got); err != nil || v != 6 || !bytes.Equal(inner, f) {
		t.Fatalf("IPv6 remote got % x", got)
	}
	back := swload.Frame(swload.MAC(1, 0), swload.MAC(2, 0), 0x88b6, 100)
	if _, err := r.WriteToUDP(append(vswitch.AppendVXLANHeader(nil, 6), back...), net.UDPAddrFromAddrPort(sw.VXLAN()[0].Local)); err != nil {
		t.Fatal(err)
	}
	if got := recv(l, time.Second); !bytes.Equal(got, back) {
		t.Fatalf("local port got % x", got)
	}
}
