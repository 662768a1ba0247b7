//go:build e2e

package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
)

// Our stdout and the C switch's, for the same sequence of events, match
// line for line, port numbers included, and ours needs
// no stdbuf to reach a pipe at once.
func TestE2EOutputMatchesC(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_switch")
	orig := testbed.Original(t, "uml_switch")
	outputs := map[string]string{}
	for name, argv := range map[string][]string{
		"C":    {"stdbuf", "-o0", orig},
		"ours": {ours},
	} {
		ctl := filepath.Join(t.TempDir(), "sw.ctl")
		d := testbed.Start(t, append(argv, "-hub", "-unix", ctl)...)
		testbed.WaitForFile(t, ctl, 5*time.Second)
		scenario(t, ctl, false)
		time.Sleep(200 * time.Millisecond)
		prog := argv[len(argv)-1]
		out := strings.ReplaceAll(d.Output(), ctl, "CTL")
		outputs[name] = strings.ReplaceAll(normalize(out), prog, "PROG")
		// The C switch complains about the rejected requests on stderr,
		// which Start mixes in; keep only what both print on stdout.
		var keep []string
		for _, l := range strings.Split(outputs[name], "\n") {
			if strings.HasPrefix(l, "PROG") || l == "New connection" || l == "Disconnect" || strings.HasPrefix(l, " Addr:") {
				keep = append(keep, l)
			}
		}
		outputs[name] = strings.Join(keep, "\n")
	}
	if outputs["C"] != outputs["ours"] {
		t.Fatalf("stdout differs\nC:\n%s\nours:\n%s", outputs["C"], outputs["ours"])
	}
	if !strings.Contains(outputs["ours"], "old port") {
		t.Fatalf("scenario did not move a MAC:\n%s", outputs["ours"])
	}
}

// One switch and one hub, three UML 6.1 guests: A pings B over both; C
// sniffs both. Then the switch is frozen with SIGSTOP for 3 s during a ping,
// the capture is decoded with tcpdump -r, and a guest killed as a process
// group loses its port at once.
func TestE2EGuestsSwitchHubStopPcapKill(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_switch")
	dir := t.TempDir()
	swCtl, hubCtl := filepath.Join(dir, "sw.ctl"), filepath.Join(dir, "hub.ctl")
	pcap := filepath.Join(dir, "sw.pcap")
	sw := testbed.Start(t, ours, "-unix", swCtl, "-pcap", pcap)
	testbed.Start(t, ours, "-hub", "-unix", hubCtl)
	testbed.WaitForFile(t, swCtl, 5*time.Second)
	testbed.WaitForFile(t, hubCtl, 5*time.Second)
	nets := []string{"eth0=daemon,,unix," + swCtl, "eth1=daemon,,unix," + hubCtl}
	setup := func(n int) string {
		return fmt.Sprintf(`ip addr add 10.0.0.%d/24 dev eth0 && ip link set eth0 up
ip addr add 10.0.1.%d/24 dev eth1 && ip link set eth1 up
`, n, n)
	}
	waitFile := func(name string) string {
		return fmt.Sprintf("while [ ! -e %s ]; do sleep 0.1; done\n", filepath.Join(dir, name))
	}
	peer := b.Boot(t, testbed.GuestConfig{Args: nets, Timeout: 150 * time.Second,
		Script: setup(2) + "echo PEER-UP\n" + waitFile("end")})
	sniff := b.Boot(t, testbed.GuestConfig{Args: nets, Timeout: 150 * time.Second,
		Script: setup(3) + fmt.Sprintf(`tcpdump -n -l -i eth0 icmp > %[1]s/sniff-sw.txt 2>&1 &
tcpdump -n -l -i eth1 icmp > %[1]s/sniff-hub.txt 2>&1 &
sleep 2; echo SNIFF-UP
`, dir) + waitFile("sniffed") + "kill %1 %2; sleep 1; echo SNIFF-DONE\n" + waitFile("end")})
	pinger := b.Boot(t, testbed.GuestConfig{Args: nets, Timeout: 150 * time.Second,
		Script: setup(1) + "echo PINGER-UP\n" + waitFile("start") + `ping -c 3 -i 0.2 -W 5 10.0.0.2 && echo PING-SW-OK
ping -c 3 -i 0.2 -W 5 10.0.1.2 && echo PING-HUB-OK
` + waitFile("long") + `ping -c 50 -i 0.2 -W 1 10.0.0.2; echo LONG-DONE
` + waitFile("end")})
	for g, m := range map[*testbed.Guest]string{peer: "PEER-UP", sniff: "SNIFF-UP", pinger: "PINGER-UP"} {
		g.WaitFor(m, 60*time.Second)
	}
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	touch("start")
	pinger.WaitFor("PING-SW-OK", 30*time.Second)
	pinger.WaitFor("PING-HUB-OK", 30*time.Second)
	if !strings.Contains(pinger.Console(), "daemon backend (uml_switch version 3)") {
		t.Errorf("guest log lacks %q", "daemon backend (uml_switch version 3)")
	}
	touch("sniffed")
	sniff.WaitFor("SNIFF-DONE", 20*time.Second)
	swSeen, _ := os.ReadFile(filepath.Join(dir, "sniff-sw.txt"))
	hubSeen, _ := os.ReadFile(filepath.Join(dir, "sniff-hub.txt"))
	if !strings.Contains(string(hubSeen), "10.0.1.1 > 10.0.1.2: ICMP echo request") {
		t.Errorf("bystander missed unicast ICMP on the hub:\n%s", hubSeen)
	}
	if strings.Contains(string(swSeen), "10.0.0.1 > 10.0.0.2: ICMP echo") {
		t.Errorf("bystander saw unicast ICMP through the learning switch:\n%s", swSeen)
	}

	// Freeze the switch for 3 s in the middle of a ping at 0.2 s intervals.
	touch("long")
	pinger.WaitFor("icmp_seq=5 ", 30*time.Second)
	pid := sw.Cmd.Process.Pid
	hostileControl(t, swCtl, pid)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	out := pinger.WaitFor("LONG-DONE", 40*time.Second)
	last := 0
	for _, m := range regexp.MustCompile(`from 10\.0\.0\.2: icmp_seq=(\d+)`).FindAllStringSubmatch(out, -1) {
		last, _ = strconv.Atoi(m[1])
	}
	if last < 45 {
		t.Errorf("ping did not survive SIGSTOP/SIGCONT of the switch (last reply seq %d):\n%s", last, out)
	}

	// The capture decodes.
	dump, err := testbed.Run("tcpdump", "-n", "-r", pcap)
	if err != nil {
		t.Fatalf("tcpdump -r %s: %v\n%s", pcap, err, dump)
	}
	if !strings.Contains(dump, "10.0.0.1 > 10.0.0.2: ICMP echo request") || !strings.Contains(dump, "10.0.0.2 > 10.0.0.1: ICMP echo reply") {
		t.Errorf("capture lacks the ping:\n%s", dump)
	}

	// Killing a guest's process group removes its port within a second.
	before := strings.Count(sw.Output(), "Disconnect")
	sniff.Kill()
	deadline := time.Now().Add(time.Second)
	for strings.Count(sw.Output(), "Disconnect") == before {
		if time.Now().After(deadline) {
			t.Fatalf("no Disconnect within 1 s of killing a guest:\n%s", sw.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	touch("end")
}

// A guest reaches a host-side tap address through -tap; tap, address,
// switch and guest all live in a namespace the test creates.
func TestE2ETapUplink(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_switch")
	ns := testbed.NetNS(t)
	in := []string{"ip", "netns", "exec", ns}
	ctl := filepath.Join(t.TempDir(), "sw.ctl")
	sw := testbed.Start(t, append(in, ours, "-unix", ctl, "-tap", "umltap0")...)
	testbed.WaitForFile(t, ctl, 5*time.Second)
	for _, args := range [][]string{
		{"ip", "addr", "add", "10.0.9.254/24", "dev", "umltap0"},
		{"ip", "link", "set", "umltap0", "up"},
	} {
		if out, err := testbed.Run(append(in, args...)...); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	g := b.Boot(t, testbed.GuestConfig{
		Args:   []string{"eth0=daemon,,unix," + ctl},
		Prefix: in,
		Script: `ip addr add 10.0.9.1/24 dev eth0 && ip link set eth0 up
ping -c 3 -i 0.2 -W 5 10.0.9.254 && echo TAP-PING-OK`,
	})
	out := g.WaitFor("TESTBED-DONE", 60*time.Second)
	if !strings.Contains(out, "TAP-PING-OK") {
		t.Fatalf("guest could not reach the tap address:\n%s", out)
	}
	if !strings.Contains(sw.Output(), "tap device 'umltap0'") {
		t.Errorf("no tap banner:\n%s", sw.Output())
	}
	// A tap that cannot be had is an error, not a switch without uplink.
	out2, err := testbed.Run(append(in, ours, "-unix", filepath.Join(t.TempDir(), "x.ctl"), "-tap", "name-too-long-for-ifnamsiz")...)
	if err == nil || !strings.Contains(out2, "tap device") {
		t.Fatalf("bad -tap: err %v, output %q", err, out2)
	}
}

// -daemon returns once the control socket accepts connections, keeps the
// argument list, and tells systemd READY=1 through NOTIFY_SOCKET.
func TestE2EDaemonReadiness(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_switch")
	dir := t.TempDir()
	ctl := filepath.Join(dir, "sw.ctl")
	notify := filepath.Join(dir, "notify")
	nl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	// The detached switch keeps stdout and stderr (as the C one does), so
	// give it files rather than pipes the test would wait on.
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(ours, "-daemon", "-unix", ctl)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("-daemon: %v: %s", err, out)
	}
	if out, _ := os.ReadFile(logf.Name()); !strings.Contains(string(out), "attached to unix socket '"+ctl+"'") {
		t.Errorf("no ready line before -daemon returned: %q", out)
	}
	pid := findSwitch(t, ctl)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	c, err := net.Dial("unix", ctl)
	if err != nil {
		t.Fatalf("control socket not ready when -daemon returned: %v", err)
	}
	c.Close()
	_ = nl.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := nl.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("NOTIFY_SOCKET got %q, %v", buf[:n], err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(ctl); os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("SIGTERM left %s behind", ctl)
}

// findSwitch finds the detached switch whose last argument is ctl, the way
// lab tools find it (last word of /proc/PID/cmdline).
func findSwitch(t *testing.T, ctl string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 1 && args[len(args)-1] == ctl && args[1] == "-daemon" {
			return pid
		}
	}
	t.Fatalf("no process with %s as its last argument", ctl)
	return 0
}

// SIGINT, SIGTERM and SIGHUP remove the socket files and end the switch;
// SIGINT kills it by that signal after cleaning up, as the C switch dies.
func TestE2ESignalsCleanUp(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_switch")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		dir := t.TempDir()
		ctl, data := filepath.Join(dir, "c.ctl"), filepath.Join(dir, "c.data")
		cmd := exec.Command(ours, "-compat-v0", "-unix", ctl, data)
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testbed.WaitForFile(t, ctl, 5*time.Second)
		testbed.WaitForFile(t, data, 5*time.Second)
		_ = cmd.Process.Signal(sig)
		err := cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != sig {
			t.Errorf("%v: exit %v, want death by the signal", sig, err)
		}
		for _, f := range []string{ctl, data} {
			if _, err := os.Stat(f); !os.IsNotExist(err) {
				t.Errorf("%v left %s behind", sig, f)
			}
		}
		if !strings.Contains(out.String(), fmt.Sprintf("Caught signal %d, cleaning up and exiting", sig)) {
			t.Errorf("%v: stdout %q", sig, out.String())
		}
	}
}

// hostileControl throws issue 4's garbage at a running switch's control
// socket (short, wrong magic, versions 2 and 9, oversize, random bytes, a
// thousand connect-and-close) and checks that its descriptors stay bounded
// and the socket keeps accepting; the caller's guests check forwarding.
func hostileControl(t *testing.T, ctl string, pid int) {
	t.Helper()
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatalf("switch descriptors: %v", err)
		}
		return len(ents)
	}
	before := fds()
	req := func(magic, version uint32, n int) []byte {
		b := make([]byte, n)
		binary.LittleEndian.PutUint32(b, magic)
		if n >= 8 {
			binary.LittleEndian.PutUint32(b[4:], version)
		}
		return b
	}
	random := make([]byte, 124)
	_, _ = rand.Read(random)
	junk := [][]byte{[]byte("ab"), req(0x12345678, 3, 124), req(0xfeedface, 2, 124),
		req(0xfeedface, 9, 124), req(0xfeedface, 3, 4096), random}
	for i := 0; i < 1000+len(junk); i++ {
		c, err := net.DialTimeout("unix", ctl, 5*time.Second)
		if err != nil {
			t.Fatalf("control socket refused connection %d: %v", i, err)
		}
		if i < len(junk) {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(junk[i])
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for fds() > before+4 {
		if time.Now().After(deadline) {
			t.Fatalf("switch holds %d descriptors after the storm, %d before", fds(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// normalize drops the lines the C switch prints for rejected requests,
// which ours prints on stderr. Port numbers stay: ours number ports as the
// C switch's descriptors are numbered.
func normalize(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Bad request type") || l == "" {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}
