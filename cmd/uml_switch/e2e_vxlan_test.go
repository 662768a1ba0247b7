//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
)

// Everything here lives in network namespaces the tests create (and
// delete); no address is ever configured on the host's own interfaces. The
// UML guests run in their switch's namespace (ip netns exec): the daemon
// transport's data sockets are abstract names, which are per namespace.

// ipn runs ip(8) (or bridge(8), with cmd "bridge") in namespace ns.
func ipn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	argv := append([]string{"ip", "-n", ns}, args...)
	if args[0] == "bridge" {
		argv = append([]string{"bridge", "-n", ns}, args[1:]...)
	}
	out, err := testbed.Run(argv...)
	if err != nil {
		t.Fatalf("%v: %v: %s", argv, err, out)
	}
	return out
}

// underlay joins namespaces a and b by a veth pair named ua/ub with the
// given /24 addresses.
func underlay(t *testing.T, a, ua, addrA, b, ub, addrB string) {
	t.Helper()
	ipn(t, a, "link", "add", ua, "type", "veth", "peer", "name", ub, "netns", b)
	ipn(t, a, "addr", "add", addrA+"/24", "dev", ua)
	ipn(t, b, "addr", "add", addrB+"/24", "dev", ub)
	ipn(t, a, "link", "set", ua, "up")
	ipn(t, b, "link", "set", ub, "up")
}

type vxRemote struct {
	Remote   string            `json:"remote"`
	RxFrames uint64            `json:"rx_frames"`
	TxFrames uint64            `json:"tx_frames"`
	MACs     int               `json:"macs"`
	Drops    map[string]uint64 `json:"drops"`
}

type vxUplink struct {
	VNI           uint32     `json:"vni"`
	Port          int        `json:"port"`
	Local         string     `json:"local"`
	StrangerDrops uint64     `json:"stranger_drops"`
	Remotes       []vxRemote `json:"remotes"`
}

func vxlanState(t *testing.T, mgmt string) vxUplink {
	t.Helper()
	var us []vxUplink
	l := mgmtDo(t, mgmt, "vxlan json")
	if err := json.Unmarshal([]byte(l[0]), &us); err != nil || len(us) != 1 {
		t.Fatalf("vxlan json %q: %v", l, err)
	}
	return us[0]
}

// portOf returns the "ports json" entry of port id.
func portOf(t *testing.T, mgmt string, id int) map[string]any {
	t.Helper()
	var ps []map[string]any
	if err := json.Unmarshal([]byte(mgmtDo(t, mgmt, "ports json")[0]), &ps); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if int(p["id"].(float64)) == id {
			return p
		}
	}
	t.Fatalf("no port %d", id)
	return nil
}

// A UML 6.1 guest on our switch and a Linux vxlan device bridged to a veth
// form one segment: pings pass both ways, the kernel's FDB learns the
// guest's MAC behind our switch, a capture of the underlay decodes as VXLAN
// with our VNI, and a 1514-byte frame is an oversize drop on a 1500-byte
// underlay while 1450-byte packets pass.
func TestE2EVXLANKernelInterop(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_switch")
	nsS, nsK, nsH := testbed.NetNS(t), testbed.NetNS(t), testbed.NetNS(t)
	underlay(t, nsS, "uS", "192.168.77.2", nsK, "uK", "192.168.77.1")
	ipn(t, nsK, "link", "add", "vxlan0", "type", "vxlan", "id", "42", "local", "192.168.77.1",
		"remote", "192.168.77.2", "dstport", "4789", "dev", "uK")
	ipn(t, nsK, "link", "add", "br0", "type", "bridge")
	ipn(t, nsK, "link", "set", "vxlan0", "master", "br0")
	ipn(t, nsK, "link", "add", "hK", "type", "veth", "peer", "name", "hH", "netns", nsH)
	ipn(t, nsK, "link", "set", "hK", "master", "br0")
	for _, l := range []string{"vxlan0", "hK", "br0"} {
		ipn(t, nsK, "link", "set", l, "up")
	}
	ipn(t, nsH, "link", "set", "hH", "mtu", "1450")
	ipn(t, nsH, "addr", "add", "10.42.0.100/24", "dev", "hH")
	ipn(t, nsH, "link", "set", "hH", "up")

	dir := t.TempDir()
	ctl, mgmt, pcap := filepath.Join(dir, "sw.ctl"), filepath.Join(dir, "mgmt"), filepath.Join(dir, "underlay.pcap")
	in := []string{"ip", "netns", "exec", nsS}
	sw := testbed.Start(t, append(in, ours, "-unix", ctl, "-mgmt", mgmt, "-vxlan", "vni=42,local=192.168.77.2,remote=192.168.77.1")...)
	testbed.WaitForFile(t, mgmt, 5*time.Second)
	// ip netns exec execs tcpdump: the pid is tcpdump's.
	dump := testbed.Start(t, append(in, "tcpdump", "-n", "-U", "-i", "uS", "-w", pcap, "udp")...)
	testbed.WaitForFile(t, pcap, 10*time.Second)
	time.Sleep(500 * time.Millisecond)

	wait := func(name string) string {
		return fmt.Sprintf("while [ ! -e %s ]; do sleep 0.1; done\n", filepath.Join(dir, name))
	}
	g := b.Boot(t, testbed.GuestConfig{Prefix: in, Timeout: 170 * time.Second,
		Args: []string{"eth0=daemon,,unix," + ctl},
		Script: `ip link set eth0 mtu 1450 && ip addr add 10.42.0.1/24 dev eth0 && ip link set eth0 up
echo "GUEST-MAC $(cat /sys/class/net/eth0/address)"
ping -c 3 -i 0.2 -W 5 10.42.0.100 && echo PING-OUT-OK
ping -c 2 -i 0.2 -W 5 -M do -s 1422 10.42.0.100 && echo BIG-OK
echo GUEST-READY
` + wait("pinged") + `ip link set eth0 mtu 1500
ping -c 2 -i 0.2 -W 2 -M do -s 1472 10.42.0.100; echo OVERSIZE-DONE
` + wait("end")})
	out := g.WaitFor("GUEST-READY", 90*time.Second)
	mac := regexp.MustCompile(`GUEST-MAC ([0-9a-f:]{17})`).FindStringSubmatch(out)
	if mac == nil {
		t.Fatalf("no guest MAC:\n%s", out)
	}
	if !strings.Contains(out, "PING-OUT-OK") {
		t.Fatalf("the guest could not ping the kernel side:\n%s", out)
	}
	if !strings.Contains(out, "BIG-OK") {
		t.Errorf("1450-byte packets did not pass:\n%s", out)
	}
	// The other way: the kernel side pings the guest.
	if o, err := testbed.Run("ip", "netns", "exec", nsH, "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.42.0.1"); err != nil {
		t.Fatalf("kernel side could not ping the guest: %v\n%s", err, o)
	}
	// The kernel's vxlan FDB has the guest's MAC behind our switch.
	fdb := ipn(t, nsK, "bridge", "fdb", "show", "dev", "vxlan0")
	if !regexp.MustCompile(mac[1] + `.*dst 192\.168\.77\.2\b`).MatchString(fdb) {
		t.Errorf("kernel FDB lacks %s dst 192.168.77.2:\n%s", mac[1], fdb)
	}
	st := vxlanState(t, mgmt)
	if len(st.Remotes) != 1 || st.Remotes[0].RxFrames == 0 || st.Remotes[0].TxFrames == 0 || st.Remotes[0].MACs < 1 {
		t.Errorf("vxlan counters: %+v", st)
	}
	if err := os.WriteFile(filepath.Join(dir, "pinged"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	g.WaitFor("OVERSIZE-DONE", 30*time.Second)
	st = vxlanState(t, mgmt)
	if n := st.Remotes[0].Drops["oversize"]; n < 2 {
		t.Errorf("oversize drops %d, want >= 2 (1514-byte frames on a 1500-byte underlay): %+v", n, st)
	}
	if p := portOf(t, mgmt, st.Port); p["drops"].(map[string]any)["oversize"].(float64) < 2 {
		t.Errorf("port %d oversize drops: %v", st.Port, p["drops"])
	}
	if err := os.WriteFile(filepath.Join(dir, "end"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	// The underlay capture decodes as VXLAN, VNI 42, both ways.
	_ = dump.Cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(500 * time.Millisecond)
	text, err := testbed.Run("tcpdump", "-n", "-r", pcap)
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, text)
	}
	for _, want := range []string{
		"192.168.77.2.4789 > 192.168.77.1.4789: VXLAN, flags [I] (0x08), vni 42",
		"10.42.0.1 > 10.42.0.100: ICMP echo request",
		"10.42.0.100 > 10.42.0.1: ICMP echo request",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("underlay capture lacks %q:\n%s", want, tailLines(text, 40))
		}
	}
	if !regexp.MustCompile(`192\.168\.77\.1\.\d+ > 192\.168\.77\.2\.4789: VXLAN, flags \[I\] \(0x08\), vni 42`).MatchString(text) {
		t.Errorf("no VXLAN from the kernel in the capture:\n%s", tailLines(text, 40))
	}
	if t.Failed() {
		t.Logf("switch output:\n%s", sw.Output())
	}
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// Two of our switches in two namespaces joined by a veth underlay, a UML
// 6.1 guest on each: they ping each other across, and each switch learned
// the other side's guest behind its remote.
func TestE2EVXLANTwoSwitches(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_switch")
	nsA, nsB := testbed.NetNS(t), testbed.NetNS(t)
	underlay(t, nsA, "uA", "192.168.78.1", nsB, "uB", "192.168.78.2")
	dir := t.TempDir()
	var mg [2]string
	var gs [2]*testbed.Guest
	for i, side := range []struct{ ns, local, remote, addr, peer string }{
		{nsA, "192.168.78.1", "192.168.78.2", "10.43.0.1", "10.43.0.2"},
		{nsB, "192.168.78.2", "192.168.78.1", "10.43.0.2", "10.43.0.1"},
	} {
		in := []string{"ip", "netns", "exec", side.ns}
		ctl := filepath.Join(dir, fmt.Sprintf("sw%d.ctl", i))
		mg[i] = filepath.Join(dir, fmt.Sprintf("mgmt%d", i))
		testbed.Start(t, append(in, ours, "-unix", ctl, "-mgmt", mg[i],
			"-vxlan", fmt.Sprintf("vni=4000,local=%s,remote=%s", side.local, side.remote))...)
		testbed.WaitForFile(t, mg[i], 5*time.Second)
		gs[i] = b.Boot(t, testbed.GuestConfig{Prefix: in, Timeout: 150 * time.Second,
			Args: []string{"eth0=daemon,,unix," + ctl},
			Script: fmt.Sprintf(`ip link set eth0 mtu 1450 && ip addr add %s/24 dev eth0 && ip link set eth0 up
sleep 1
ping -c 5 -i 0.3 -W 10 %s && echo CROSS-PING-OK
ping -c 2 -i 0.2 -W 5 -M do -s 1422 %s && echo CROSS-BIG-OK
echo CROSS-DONE
%s`, side.addr, side.peer, side.peer, fmt.Sprintf("while [ ! -e %s ]; do sleep 0.1; done\n", filepath.Join(dir, "end")))})
	}
	for i, g := range gs {
		out := g.WaitFor("CROSS-DONE", 120*time.Second)
		if !strings.Contains(out, "CROSS-PING-OK") || !strings.Contains(out, "CROSS-BIG-OK") {
			t.Errorf("guest %d could not ping across:\n%s", i, out)
		}
	}
	for i := range mg {
		st := vxlanState(t, mg[i])
		if len(st.Remotes) != 1 || st.Remotes[0].MACs != 1 || st.Remotes[0].RxFrames < 5 || st.StrangerDrops != 0 {
			t.Errorf("switch %d: %+v", i, st)
		}
	}
	_ = os.WriteFile(filepath.Join(dir, "end"), nil, 0o644)
	// An OSPF adjacency across needs FRR, which the test bed does not
	// install; the pings above carry the same frames (multicast and
	// unicast IP over the one segment).
}

// Bad input from real kernels and raw datagrams: another VNI (a kernel
// vxlan device of VNI 43 at our remote's address), a stranger (a kernel
// vxlan device of our VNI at an address that is no remote), truncated and
// flagless headers from the remote's address. All dropped and counted;
// nothing enters the switch.
func TestE2EVXLANBadInput(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_switch")
	nsS, nsK := testbed.NetNS(t), testbed.NetNS(t)
	underlay(t, nsS, "uS", "192.168.79.2", nsK, "uK", "192.168.79.1")
	ipn(t, nsK, "addr", "add", "192.168.79.3/24", "dev", "uK")
	dir := t.TempDir()
	ctl, mgmt := filepath.Join(dir, "sw.ctl"), filepath.Join(dir, "mgmt")
	testbed.Start(t, "ip", "netns", "exec", nsS, ours, "-unix", ctl, "-mgmt", mgmt, "-vxlan", "vni=42,local=192.168.79.2,remote=192.168.79.1")
	testbed.WaitForFile(t, mgmt, 5*time.Second)
	for _, d := range []struct{ name, id, local, addr string }{
		{"vxwrong", "43", "192.168.79.1", "10.50.0.1/24"},
		{"vxstranger", "42", "192.168.79.3", "10.51.0.1/24"},
	} {
		ipn(t, nsK, "link", "add", d.name, "type", "vxlan", "id", d.id, "local", d.local, "remote", "192.168.79.2", "dstport", "4789", "dev", "uK")
		ipn(t, nsK, "addr", "add", d.addr, "dev", d.name)
		ipn(t, nsK, "link", "set", d.name, "up")
	}
	// Broadcast ARP requests go out of both devices.
	for _, target := range []string{"10.50.0.2", "10.51.0.2"} {
		_, _ = testbed.Run("ip", "netns", "exec", nsK, "ping", "-c", "2", "-i", "0.2", "-W", "1", target)
	}
	// Raw datagrams from the remote's address: bash's /dev/udp sends from
	// the address the route picks, 192.168.79.1.
	for _, payload := range []string{`\x08\x00`, `\x00\x00\x00\x00\x00\x00\x2a\x00\xff\xff\xff\xff\xff\xff\x02\x00\x00\x00\x00\x01\x08\x06`,
		`\x08\x00\x00\x00\x00\x00\x2a\x00\x01\x02\x03`} {
		if out, err := testbed.Run("ip", "netns", "exec", nsK, "bash", "-c", fmt.Sprintf(`printf '%s' > /dev/udp/192.168.79.2/4789`, payload)); err != nil {
			t.Fatalf("sending a raw datagram: %v: %s", err, out)
		}
	}
	var st vxUplink
	deadline := time.Now().Add(5 * time.Second)
	for {
		st = vxlanState(t, mgmt)
		r := st.Remotes[0]
		if st.StrangerDrops >= 2 && r.Drops["wrong_vni"] >= 2 && r.Drops["malformed"] >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drops not counted: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Remotes[0].RxFrames != 0 || st.Remotes[0].MACs != 0 {
		t.Errorf("bad input was accepted: %+v", st)
	}
	if p := portOf(t, mgmt, st.Port); p["rx_frames"].(float64) != 0 {
		t.Errorf("bad input entered the switch: %v", p)
	}
	if macs := mgmtDo(t, mgmt, "macs"); len(macs) != 1 {
		t.Errorf("addresses learned from bad input: %q", macs)
	}
}
