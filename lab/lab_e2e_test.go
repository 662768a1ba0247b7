//go:build e2e

package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
	"github.com/umlutils/umlutils/internal/testbed/labimage"
	"github.com/umlutils/umlutils/lab"
)

// umlabBin builds umlab with the programs it runs beside it (umlab-guest,
// uml_switch), once per test process.
func umlabBin(t *testing.T) string {
	t.Helper()
	b := testbed.Get(t)
	b.Tool(t, "umlab-guest")
	b.Tool(t, "uml_switch")
	b.Tool(t, "ptybridge")
	return b.Tool(t, "umlab")
}

// labEnv is the environment umlab runs in: the test bed's image.
func labEnv(t *testing.T) []string {
	t.Helper()
	img := os.Getenv("UMLAB_IMAGE")
	if img == "" {
		img = labimage.Path(t)
	}
	env := append(os.Environ(), "UMLAB_IMAGE="+img)
	if p := testbed.Get(t).Preload; p != "" {
		env = append(env, "UMLAB_PRELOAD="+p)
	}
	return env
}

type result struct {
	code           int
	stdout, stderr string
}

// umlab runs one umlab command on the lab in dir.
func umlab(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return umlabIn(t, dir, "", args...)
}

func umlabIn(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, umlabBin(t), args...)
	cmd.Dir = dir
	cmd.Env = labEnv(t)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("umlab %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func mustUmlab(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := umlab(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("umlab %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// writeLab writes files (path -> content) under a new lab directory.
func writeLab(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lab")
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startLab starts the lab and makes sure it is cleaned up, and that the
// clean-up left nothing: no process of the lab, no runtime directory, no
// disk.
func startLab(t *testing.T, dir string, args ...string) {
	t.Helper()
	t.Cleanup(func() { cleanAndCheck(t, dir) })
	t0 := time.Now()
	mustUmlab(t, dir, append([]string{"start"}, args...)...)
	t.Logf("%s started in %.1fs", filepath.Base(filepath.Dir(dir)), time.Since(t0).Seconds())
}

func cleanAndCheck(t *testing.T, dir string) {
	t.Helper()
	var before lab.Info
	if r := umlab(t, dir, "info", "--json"); r.code == 0 {
		json.Unmarshal([]byte(r.stdout), &before)
	}
	if r := umlab(t, dir, "clean"); r.code != 0 {
		t.Errorf("umlab clean: exit %d: %s", r.code, r.stderr)
	}
	for _, m := range before.Machines {
		if m.PID > 0 && pidAlive(m.PID) {
			t.Errorf("after clean, %s's kernel (pid %d) still runs", m.Name, m.PID)
		}
	}
	for _, d := range before.Domains {
		if d.PID > 0 && pidAlive(d.PID) {
			t.Errorf("after clean, the switch of %s (pid %d) still runs", d.Name, d.PID)
		}
	}
	if before.Runtime != "" {
		if _, err := os.Stat(before.Runtime); err == nil {
			t.Errorf("after clean, the runtime directory %s is still there", before.Runtime)
		}
	}
	for _, m := range before.Machines {
		if _, err := os.Stat(filepath.Join(dir, m.Name+".disk")); err == nil {
			t.Errorf("after clean, %s.disk is left", m.Name)
		}
	}
	if procs := labProcesses(before.ID); len(procs) > 0 {
		t.Errorf("after clean, processes of the lab remain: %v", procs)
	}
}

func pidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

// labProcesses lists live processes whose command line names the lab's id
// (every guest kernel's umid starts with it, every switch's sockets hold it).
func labProcesses(id string) []string {
	if id == "" {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(id)) {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err == nil && pidAlive(pid) && pid != os.Getpid() {
			out = append(out, e.Name()+":"+strings.ReplaceAll(string(b[:min(len(b), 60)]), "\x00", " "))
		}
	}
	return out
}

// execOut runs a command in a guest and returns its output, failing the
// test on a non-zero status.
func execOut(t *testing.T, dir, machine string, argv ...string) string {
	t.Helper()
	r := umlab(t, dir, append([]string{"exec", machine, "--"}, argv...)...)
	if r.code != 0 {
		t.Fatalf("exec %s %v: exit %d\nstdout: %s\nstderr: %s", machine, argv, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// eventually retries fn until it returns "" or the time is up.
func eventually(t *testing.T, d time.Duration, fn func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := fn()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, msg)
		}
		time.Sleep(time.Second)
	}
}

// A Netkit 2.8 lab: machines=, a router between two hosts configured with
// net-tools in the startup files, lab.dep order, a shared.startup.
var netkit28 = map[string]string{
	"lab.conf": `LAB_DESCRIPTION="two hosts and a router"
LAB_VERSION=1.0
machines="pc1 r1 pc2"
pc1[0]=A
r1[0]=A
r1[1]=B
pc2[0]=B
pc1[mem]=64
`,
	"lab.dep":        "pc1: r1\npc2: r1\n",
	"shared.startup": "echo shared-was-here > /tmp/shared.txt\n",
	"pc1.startup":    "ifconfig eth0 10.0.1.1 netmask 255.255.255.0 up\nroute add default gw 10.0.1.254\n",
	"r1.startup":     "ifconfig eth0 10.0.1.254 netmask 255.255.255.0 up\nifconfig eth1 10.0.2.254 netmask 255.255.255.0 up\n",
	"pc2.startup":    "ifconfig eth0 10.0.2.1 netmask 255.255.255.0 up\nroute add default gw 10.0.2.254\n",
	"pc2/etc/motd":   "pc2's own motd\n",
}

func TestE2ELabNetkit28(t *testing.T) {
	t.Parallel()
	dir := writeLab(t, netkit28)
	startLab(t, dir, "-p", "3")

	out := execOut(t, dir, "pc1", "ping", "-c", "2", "-W", "3", "10.0.2.1")
	if !strings.Contains(out, " 0% packet loss") {
		t.Errorf("pc1 -> pc2 through r1:\n%s", out)
	}
	if got := execOut(t, dir, "pc2", "cat", "/etc/motd", "/tmp/shared.txt"); got != "pc2's own motd\nshared-was-here\n" {
		t.Errorf("pc2's files: %q", got)
	}
	if got := strings.TrimSpace(execOut(t, dir, "r1", "hostname")); got != "r1" {
		t.Errorf("hostname %q", got)
	}
	// exec: exit status, stderr, stdin, a shell line.
	if r := umlab(t, dir, "exec", "pc1", "--", "sh", "-c", "echo out; echo err >&2; exit 7"); r.code != 7 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("exec status/output: %+v", r)
	}
	if r := umlabIn(t, dir, "hello stdin\n", "exec", "pc1", "--", "cat"); r.code != 0 || r.stdout != "hello stdin\n" {
		t.Errorf("exec stdin: %+v", r)
	}
	if r := umlab(t, dir, "exec", "pc1", "ip route | grep -c default"); r.code != 0 || r.stdout != "1\n" {
		t.Errorf("exec shell line: %+v", r)
	}
	if r := umlab(t, dir, "exec", "pc1", "--", "/no/such/program"); r.code == 0 {
		t.Errorf("exec of a missing program succeeded: %+v", r)
	}
	// exec works with the guest's network down.
	execOut(t, dir, "pc1", "ip", "link", "set", "eth0", "down")
	if got := execOut(t, dir, "pc1", "echo", "still here"); got != "still here\n" {
		t.Errorf("exec with the network down: %q", got)
	}
	// exec overhead.
	t0 := time.Now()
	execOut(t, dir, "pc2", "true")
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("exec true took %s", d)
	} else {
		t.Logf("exec true: %s", d)
	}

	// A frozen guest: a clear error in bounded time, then it thaws.
	mustUmlab(t, dir, "exec", "pc2", "--", "true")
	mc := testbed.Get(t).Tool(t, "uml_mconsole")
	var info lab.Info
	json.Unmarshal([]byte(mustUmlab(t, dir, "info", "--json")), &info)
	var pc2 lab.MachineInfo
	for _, m := range info.Machines {
		if m.Name == "pc2" {
			pc2 = m
		}
	}
	sock := filepath.Join(info.Runtime, "uml", pc2.UMID, "mconsole")
	if out, err := exec.Command(mc, sock, "stop").CombinedOutput(); err != nil {
		t.Fatalf("mconsole stop: %v %s", err, out)
	}
	t0 = time.Now()
	r := umlab(t, dir, "exec", "pc2", "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "does not answer") || time.Since(t0) > 15*time.Second {
		t.Errorf("exec on a stopped guest: %+v after %s", r, time.Since(t0))
	}
	exec.Command(mc, sock, "go").Run()
	eventually(t, 20*time.Second, func() string {
		if r := umlab(t, dir, "exec", "pc2", "--", "true"); r.code != 0 {
			return "pc2 does not answer after go: " + r.stderr
		}
		return ""
	})

	// Starting it again is an error, and starts nothing.
	if r := umlab(t, dir, "start"); r.code == 0 || !strings.Contains(r.stderr, "already running") {
		t.Errorf("second start: %+v", r)
	}

	// halt keeps the disks; the lab comes back with what it wrote.
	execOut(t, dir, "pc2", "sh", "-c", "echo persisted > /root/note")
	mustUmlab(t, dir, "halt", "pc2")
	if _, err := os.Stat(filepath.Join(dir, "pc2.disk")); err != nil {
		t.Errorf("halt removed pc2's disk: %v", err)
	}
	mustUmlab(t, dir, "start", "pc2")
	if got := execOut(t, dir, "pc2", "cat", "/root/note"); got != "persisted\n" {
		t.Errorf("after halt and start, /root/note = %q", got)
	}
	// crash removes disks unless -F.
	mustUmlab(t, dir, "crash", "pc1")
	if _, err := os.Stat(filepath.Join(dir, "pc1.disk")); err == nil {
		t.Errorf("crash kept pc1's disk")
	}
}

// A Netkit-JH lab: LAB_MACHINES, ifupdown with /etc/network/interfaces, a
// systemd unit shipped in MACHINE/lib/systemd/system (merged /usr: it
// lands in /usr/lib), a result file written to /hostlab.
var netkitJH = map[string]string{
	"lab.conf": `LAB_DESCRIPTION="netkit-jh style"
LAB_MACHINES=a,b
a[0]=lan
b[0]=lan
`,
	"a/etc/network/interfaces": "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n    address 172.16.0.1/24\n",
	"b/etc/network/interfaces": "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n    address 172.16.0.2/24\n",
	"a.startup":                "ifup eth0\nsystemctl start hello\n",
	"b.startup":                "ifup eth0\n",
	"a/lib/systemd/system/hello.service": `[Unit]
Description=writes a result file to the lab directory
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'ping -c 1 -W 5 172.16.0.2 > /hostlab/result.txt 2>&1'
`,
}

func TestE2ELabNetkitJH(t *testing.T) {
	t.Parallel()
	dir := writeLab(t, netkitJH)
	startLab(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "result.txt"))
	if err != nil || !strings.Contains(string(b), " 0% packet loss") {
		t.Errorf("result file from a's unit: %v\n%s", err, b)
	}
	if got := execOut(t, dir, "a", "readlink", "/lib"); strings.TrimSpace(got) != "usr/lib" {
		t.Errorf("/lib is no longer the image's merged-/usr link: %q", got)
	}
	// Same lab, second copy, side by side: same machine names, no clash.
	dir2 := writeLab(t, netkitJH)
	startLab(t, dir2)
	if got := execOut(t, dir2, "b", "hostname"); got != "b\n" {
		t.Errorf("second lab's b: %q", got)
	}
	if got := execOut(t, dir, "a", "ping", "-c", "1", "-W", "3", "172.16.0.2"); !strings.Contains(got, " 0% packet loss") {
		t.Errorf("first lab after the second started:\n%s", got)
	}
	list := mustUmlab(t, dir, "list")
	if !strings.Contains(list, dir) || !strings.Contains(list, dir2) {
		t.Errorf("umlab list shows not both labs:\n%s", list)
	}
}

// A Kathará lab: [image]=kathara/frr, FRR configured by files in
// MACHINE/etc/frr, `systemctl start frr` in the startup files, startup
// files that only add addresses (interfaces brought up by the runner),
// default sysctls (forwarding) and a [sysctl] of its own.
var kathara = map[string]string{
	"lab.conf": `LAB_NAME="ospf line"
r1[0]="A"
r1[1]="B"
r2[0]="B"
r2[1]="C"
r3[0]="C"
r3[1]="D/02:42:ac:11:00:33"
r1[image]="kathara/frr"
r2[image]="kathara/frr"
r3[image]="kathara/frr"
r2[sysctl]="net.ipv4.icmp_echo_ignore_broadcasts=0"
`,
	"r1.startup": "ip address add 10.1.0.1/24 dev eth0\nip address add 10.0.12.1/24 dev eth1\nsystemctl start frr\n",
	"r2.startup": "ip address add 10.0.12.2/24 dev eth0\nip address add 10.0.23.2/24 dev eth1\nsystemctl start frr\n",
	"r3.startup": "ip address add 10.0.23.3/24 dev eth0\nip address add 10.3.0.3/24 dev eth1\nsystemctl start frr\n",
}

func init() {
	for _, r := range []string{"r1", "r2", "r3"} {
		kathara[r+"/etc/frr/daemons"] = "zebra=yes\nospfd=yes\nvtysh_enable=yes\nzebra_options=\"  -A 127.0.0.1 -s 90000000\"\nospfd_options=\"  -A 127.0.0.1\"\n"
		kathara[r+"/etc/frr/frr.conf"] = "frr defaults traditional\n!\ninterface eth0\n ip ospf hello-interval 1\n ip ospf dead-interval 4\n!\ninterface eth1\n ip ospf hello-interval 1\n ip ospf dead-interval 4\n!\nrouter ospf\n network 10.0.0.0/8 area 0\n!\n"
	}
}

func TestE2ELabKathara(t *testing.T) {
	t.Parallel()
	dir := writeLab(t, kathara)
	startLab(t, dir)
	if got := execOut(t, dir, "r2", "sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.icmp_echo_ignore_broadcasts"); got != "1\n0\n" {
		t.Errorf("sysctls: %q", got)
	}
	if got := execOut(t, dir, "r3", "cat", "/sys/class/net/eth1/address"); got != "02:42:ac:11:00:33\n" {
		t.Errorf("r3 eth1's MAC from lab.conf: %q", got)
	}
	t0 := time.Now()
	eventually(t, 90*time.Second, func() string {
		out := execOut(t, dir, "r1", "ip", "route")
		if !strings.Contains(out, "10.3.0.0/24") {
			return "r1 has no route to r3's LAN:\n" + out
		}
		return ""
	})
	t.Logf("OSPF routes after %.1fs", time.Since(t0).Seconds())
	if out := execOut(t, dir, "r1", "ping", "-c", "2", "-W", "3", "10.3.0.3"); !strings.Contains(out, " 0% packet loss") {
		t.Errorf("r1 -> r3:\n%s", out)
	}
	var info lab.Info
	if err := json.Unmarshal([]byte(mustUmlab(t, dir, "info", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "kathara" || len(info.Machines) != 3 || len(info.Domains) != 4 {
		t.Errorf("info: %+v", info)
	}
	for _, m := range info.Machines {
		if m.State != "running" || m.PID == 0 {
			t.Errorf("info: %s %s", m.Name, m.State)
		}
		for _, i := range m.Interfaces {
			if i.Port == 0 {
				t.Errorf("info: %s.%s has no switch port", m.Name, i.Name)
			}
		}
	}
	if dot := mustUmlab(t, dir, "info", "--dot"); !strings.Contains(dot, `"m:r2" -- "d:B"`) {
		t.Errorf("dot:\n%s", dot)
	}
	// dump: the domain's frames as pcap, read by tcpdump.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dump := exec.CommandContext(ctx, umlabBin(t), "dump", "B")
	dump.Dir, dump.Env = dir, labEnv(t)
	var pcap bytes.Buffer
	dump.Stdout = &pcap
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	execOut(t, dir, "r1", "ping", "-c", "3", "-i", "0.3", "10.0.12.2")
	dump.Process.Signal(os.Interrupt)
	dump.Wait()
	f := filepath.Join(t.TempDir(), "b.pcap")
	os.WriteFile(f, pcap.Bytes(), 0o644)
	out, _ := exec.Command("tcpdump", "-nr", f).CombinedOutput()
	if !strings.Contains(string(out), "ICMP echo request") {
		t.Errorf("dump of B has no ping:\n%s", out)
	}
}

// Bad lab.conf inputs: a clear error with file and line, nothing started.
func TestE2ELabBadConf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, conf, want string }{
		{"no-bracket", "pc1[0=A\n", "lab.conf:1"},
		{"bad-name", "pc/1[0]=A\n", "lab.conf:1"},
		{"bad-mac", "LAB_NAME=x\npc1[0]=\"A/zz:zz\"\n", "lab.conf:2"},
		{"unknown-image", "pc1[0]=A\npc1[image]=\"kathara/nonsense\"\n", "lab.conf:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeLab(t, map[string]string{"lab.conf": tc.conf})
			r := umlab(t, dir, "start")
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("start: exit %d, stderr %q, want an error naming %s", r.code, r.stderr, tc.want)
			}
			if disks, _ := filepath.Glob(filepath.Join(dir, "*.disk")); len(disks) > 0 {
				t.Errorf("disks made: %v", disks)
			}
			if _, err := os.Stat(lab.RuntimeFor(dir).Dir); err == nil {
				umlab(t, dir, "clean")
				t.Errorf("a runtime directory was made")
			}
		})
	}
}

// Labs run without root: an unprivileged user (nobody) starts a lab, runs
// a command in it and crashes it, with an image root built.
func TestE2ELabRootless(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("runs as root to become nobody")
	}
	const nobody = 65534
	base, err := os.MkdirTemp("", "umlab-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	umlabBin(t)
	bin := filepath.Join(base, "bin")
	os.MkdirAll(bin, 0o755)
	for _, name := range []string{"umlab", "umlab-guest", "uml_switch"} {
		if out, err := exec.Command("cp", filepath.Join(testbed.Get(t).ToolsDir, name), bin).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	img := filepath.Join(base, "root.img")
	if out, err := exec.Command("cp", "--sparse=always", "--reflink=auto", labimage.Path(t), img).CombinedOutput(); err != nil {
		t.Fatalf("cp image: %v %s", err, out)
	}
	dir := filepath.Join(base, "lab")
	for name, content := range map[string]string{
		"lab.conf":    "LAB_MACHINES=a,b\na[0]=x\nb[0]=x\n",
		"a.startup":   "ip address add 10.7.0.1/24 dev eth0\n",
		"b.startup":   "ip address add 10.7.0.2/24 dev eth0\n",
		"home/.keep":  "",
		"cache/.keep": "",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	os.Chmod(base, 0o755)
	exec.Command("chown", "-R", fmt.Sprint(nobody), dir).Run()
	run := func(args ...string) result {
		cmd := exec.Command(filepath.Join(bin, "umlab"), args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + filepath.Join(dir, "home"),
			"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "UMLAB_RUNTIME=" + filepath.Join(base, "rt"),
			"UMLAB_IMAGE=" + img}
		if p := testbed.Get(t).Preload; p != "" {
			cmd.Env = append(cmd.Env, "UMLAB_PRELOAD="+p)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		r := result{stdout: out.String(), stderr: errb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	os.MkdirAll(filepath.Join(base, "rt"), 0o755)
	os.Chown(filepath.Join(base, "rt"), nobody, nobody)
	t.Cleanup(func() { run("clean") })
	if r := run("start"); r.code != 0 {
		t.Fatalf("start as nobody: %+v", r)
	}
	if r := run("exec", "a", "ping", "-c", "1", "-W", "3", "10.7.0.2"); r.code != 0 || !strings.Contains(r.stdout, " 0% packet loss") {
		t.Errorf("exec as nobody: %+v", r)
	}
	var info lab.Info
	json.Unmarshal([]byte(run("info", "--json").stdout), &info)
	for _, m := range info.Machines {
		if st, err := os.Stat(fmt.Sprintf("/proc/%d", m.PID)); err != nil || st.Sys().(*syscall.Stat_t).Uid != nobody {
			t.Errorf("%s's kernel does not run as nobody: %v", m.Name, err)
		}
	}
	if r := run("crash"); r.code != 0 {
		t.Errorf("crash as nobody: %+v", r)
	}
}

// Startup files that fail, hang or leave daemons behind: start is bounded,
// names the failing machines with the end of their logs, exits non-zero,
// and leaves the other machines running.
func TestE2ELabStartupFailures(t *testing.T) {
	t.Parallel()
	dir := writeLab(t, map[string]string{
		"lab.conf":      "ok[0]=A\nbad[0]=A\nhang[0]=A\n",
		"ok.startup":    "sleep 1000 > /dev/null 2>&1 &\necho started a daemon\n",
		"bad.startup":   "echo about to fail\nexit 3\n",
		"hang.startup":  "echo hanging\nsleep 1000\n",
		"bad/etc/motd":  "x\n",
		"hang/etc/motd": "y\n",
	})
	t.Cleanup(func() { cleanAndCheck(t, dir) })
	t0 := time.Now()
	r := umlab(t, dir, "start", "-t", "60")
	took := time.Since(t0)
	if r.code == 0 {
		t.Fatalf("start succeeded: %+v", r)
	}
	for _, want := range []string{"bad: startup failed: bad.startup exited with status 3", "about to fail", "hang: startup failed", "hanging"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("start's error lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "ok:") {
		t.Errorf("ok reported as failed:\n%s", r.stderr)
	}
	if took > 150*time.Second {
		t.Errorf("start took %s with a 60 s timeout", took)
	}
	if got := execOut(t, dir, "ok", "pgrep", "-c", "sleep"); got != "1\n" {
		t.Errorf("ok's background daemon: %q", got)
	}
	if got := execOut(t, dir, "bad", "hostname"); got != "bad\n" {
		t.Errorf("bad does not run on: %q", got)
	}
}

// One lab across two hosts: two network namespaces joined by a veth
// underlay, each with its own copy of the lab directory, each starting
// its share of the machines in its namespace; the domain in lab.vxlan is
// carried between the hosts' switches over VXLAN.
func TestE2ELabSpanning(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ns := []string{fmt.Sprintf("umlabspan%d-1", os.Getpid()), fmt.Sprintf("umlabspan%d-2", os.Getpid())}
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	for _, n := range ns {
		sh("ip", "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		sh("ip", "-n", n, "link", "set", "lo", "up")
	}
	sh("ip", "link", "add", "uspanA", "netns", ns[0], "type", "veth", "peer", "name", "uspanB", "netns", ns[1])
	for i, dev := range []string{"uspanA", "uspanB"} {
		sh("ip", "-n", ns[i], "addr", "add", fmt.Sprintf("10.231.0.%d/24", i+1), "dev", dev)
		sh("ip", "-n", ns[i], "link", "set", dev, "up")
	}
	files := map[string]string{
		"lab.conf":  "LAB_NAME=span\na[0]=X\nb[0]=X\n",
		"a.startup": "ip address add 10.77.0.1/24 dev eth0\n",
		"b.startup": "ip address add 10.77.0.2/24 dev eth0\n",
		"lab.vxlan": "X vni=4242 10.231.0.1 10.231.0.2\n",
	}
	dirs := []string{writeLab(t, files), writeLab(t, files)}
	for i, m := range []string{"a", "b"} {
		dir := dirs[i]
		t.Cleanup(func() { cleanAndCheck(t, dir) })
		cmd := exec.Command("ip", "netns", "exec", ns[i], umlabBin(t), "start", m)
		cmd.Dir, cmd.Env = dir, labEnv(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("start %s in %s: %v\n%s", m, ns[i], err, out)
		}
	}
	if got := execOut(t, dirs[0], "a", "cat", "/sys/class/net/eth0/mtu"); got != "1450\n" {
		t.Errorf("a's eth0 MTU on a spanning domain: %q", got)
	}
	eventually(t, 30*time.Second, func() string {
		r := umlab(t, dirs[0], "exec", "a", "ping", "-c", "2", "-W", "2", "10.77.0.2")
		if r.code != 0 {
			return "a (host 1) cannot ping b (host 2):\n" + r.stdout + r.stderr
		}
		return ""
	})
	// Full-size frames of the domain's MTU cross the underlay.
	if out := execOut(t, dirs[1], "b", "ping", "-c", "1", "-W", "3", "-M", "do", "-s", "1422", "10.77.0.1"); !strings.Contains(out, " 0% packet loss") {
		t.Errorf("1450-byte packets b -> a:\n%s", out)
	}
}

// Faults and snapshots, each observed from inside the guests: link down
// and up, loss, delay, a frozen domain, a paused machine, a cut serial
// cable, fault kept across a restart, a snapshot rolled back by file
// content.
func TestE2ELabFaults(t *testing.T) {
	t.Parallel()
	dir := writeLab(t, map[string]string{
		"lab.conf":  "LAB_MACHINES=a,b\na[0]=X\nb[0]=X\na[ssl1]=c1\nb[ssl1]=c1\na[ubd1]=data.disk:32M\n",
		"a.startup": "ip address add 10.8.0.1/24 dev eth0\nstty -F /dev/ttyS1 raw -echo\n",
		"b.startup": "ip address add 10.8.0.2/24 dev eth0\nstty -F /dev/ttyS1 raw -echo\n",
	})
	startLab(t, dir)
	ping := func(args ...string) string {
		r := umlab(t, dir, append([]string{"exec", "a", "ping", "-n", "-q"}, append(args, "10.8.0.2")...)...)
		return r.stdout
	}
	if out := ping("-c", "2", "-W", "2"); !strings.Contains(out, " 0% packet loss") {
		t.Fatalf("no ping to start with:\n%s", out)
	}
	mustUmlab(t, dir, "fault", "link", "b", "eth0", "down")
	if out := ping("-c", "2", "-W", "1"); !strings.Contains(out, "100% packet loss") {
		t.Errorf("b's link down, yet:\n%s", out)
	}
	if info := mustUmlab(t, dir, "info"); !strings.Contains(info, "b.eth0: down") || !strings.Contains(info, "[down]") {
		t.Errorf("info does not show the fault:\n%s", info)
	}
	mustUmlab(t, dir, "fault", "link", "b", "eth0", "up")
	if out := ping("-c", "2", "-W", "2"); !strings.Contains(out, " 0% packet loss") {
		t.Errorf("b's link up again, yet:\n%s", out)
	}
	mustUmlab(t, dir, "fault", "link", "b", "eth0", "delay", "200")
	if out := ping("-c", "3", "-i", "0.3"); !regexp.MustCompile(`= 2\d\d\.`).MatchString(out) {
		t.Errorf("200 ms delay towards b, rtt:\n%s", out)
	}
	mustUmlab(t, dir, "fault", "link", "b", "eth0", "clear")
	mustUmlab(t, dir, "fault", "link", "b", "eth0", "loss", "100")
	if out := ping("-c", "2", "-W", "1"); !strings.Contains(out, "100% packet loss") {
		t.Errorf("100%% loss towards b, yet:\n%s", out)
	}
	// Kept across a restart of b.
	mustUmlab(t, dir, "halt", "b")
	mustUmlab(t, dir, "start", "b")
	if out := ping("-c", "2", "-W", "1"); !strings.Contains(out, "100% packet loss") {
		t.Errorf("the loss was not kept across b's restart:\n%s", out)
	}
	mustUmlab(t, dir, "fault", "link", "b", "eth0", "clear")
	if out := ping("-c", "2", "-W", "2"); !strings.Contains(out, " 0% packet loss") {
		t.Errorf("after clear:\n%s", out)
	}

	// A frozen domain: no frames, info still answers; thawed, they flow.
	mustUmlab(t, dir, "fault", "freeze", "X")
	t0 := time.Now()
	if info := mustUmlab(t, dir, "info"); !strings.Contains(info, "frozen") || time.Since(t0) > 5*time.Second {
		t.Errorf("info with X frozen (%s):\n%s", time.Since(t0), info)
	}
	if out := ping("-c", "2", "-W", "1"); !strings.Contains(out, "100% packet loss") {
		t.Errorf("X frozen, yet:\n%s", out)
	}
	mustUmlab(t, dir, "fault", "thaw", "X")
	eventually(t, 15*time.Second, func() string {
		if out := ping("-c", "1", "-W", "2"); !strings.Contains(out, " 0% packet loss") {
			return "X thawed, no ping:\n" + out
		}
		return ""
	})

	// A paused machine answers nothing, then goes on.
	mustUmlab(t, dir, "fault", "stop", "b")
	if out := ping("-c", "2", "-W", "1"); !strings.Contains(out, "100% packet loss") {
		t.Errorf("b paused, yet:\n%s", out)
	}
	mustUmlab(t, dir, "fault", "go", "b")
	eventually(t, 15*time.Second, func() string {
		if out := ping("-c", "1", "-W", "2"); !strings.Contains(out, " 0% packet loss") {
			return "b resumed, no ping:\n" + out
		}
		return ""
	})

	// The serial cable carries bytes; cut, it drops them; healed, it
	// carries again. b reads its ttyS1 in the background.
	cable := func(msg string) string {
		umlab(t, dir, "exec", "b", "--", "sh", "-c", "rm -f /tmp/rx; (timeout 4 cat /dev/ttyS1 > /tmp/rx &) ; sleep 0.5")
		mustUmlab(t, dir, "exec", "a", "--", "sh", "-c", "printf '"+msg+"' > /dev/ttyS1")
		time.Sleep(4 * time.Second)
		return execOut(t, dir, "b", "cat", "/tmp/rx")
	}
	if got := cable("hello"); got != "hello" {
		t.Errorf("over the cable: %q", got)
	}
	mustUmlab(t, dir, "fault", "cut", "c1")
	if got := cable("lost"); got != "" {
		t.Errorf("over the cut cable: %q", got)
	}
	mustUmlab(t, dir, "fault", "heal", "c1")
	if got := cable("again"); got != "again" {
		t.Errorf("over the healed cable: %q", got)
	}

	// The lab disk is there and shared-attached.
	execOut(t, dir, "a", "sh", "-c", "mount /dev/ubdb /mnt && echo on-disk > /mnt/f && umount /mnt")

	// Snapshot, change, halt, restore, start: the old content is back.
	execOut(t, dir, "a", "sh", "-c", "echo v1 > /root/f; sync")
	mustUmlab(t, dir, "snapshot", "save", "s1")
	execOut(t, dir, "a", "sh", "-c", "echo v2 > /root/f; sync")
	if r := umlab(t, dir, "snapshot", "restore", "s1"); r.code == 0 || !strings.Contains(r.stderr, "halt it first") {
		t.Errorf("restore onto a running lab: %+v", r)
	}
	mustUmlab(t, dir, "halt")
	mustUmlab(t, dir, "snapshot", "restore", "s1")
	mustUmlab(t, dir, "start")
	if got := execOut(t, dir, "a", "cat", "/root/f"); got != "v1\n" {
		t.Errorf("after restoring s1: %q", got)
	}
	if list := mustUmlab(t, dir, "snapshot", "list"); !strings.Contains(list, "s1") || !strings.Contains(list, "live") {
		t.Errorf("snapshot list: %q", list)
	}
	// crash of one machine: gone at once, the other runs on.
	mustUmlab(t, dir, "fault", "crash", "b")
	if out := ping("-c", "1", "-W", "1"); !strings.Contains(out, "100% packet loss") {
		t.Errorf("b crashed, yet:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.disk")); err != nil {
		t.Errorf("fault crash removed b's disk: %v", err)
	}
	// clean keeps snapshots and lab disks.
	cleanAndCheck(t, dir)
	for _, f := range []string{".umlab/snapshots/s1/snapshot.json", "data.disk"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("clean removed %s: %v", f, err)
		}
	}
}

// A machine with [kernel]= a UML 7.x kernel (vector transports only)
// attaches to the same hub over bess, its interface still named eth0,
// and pings a UML 6.1 machine on the daemon transport.
func TestE2ELabModernKernel(t *testing.T) {
	t.Parallel()
	dir := writeLab(t, map[string]string{
		"lab.conf":    "new[0]=A\nold[0]=A\nnew[kernel]=" + testbed.Get(t).Modern + "\n",
		"new.startup": "ip address add 10.6.0.1/24 dev eth0\n",
		"old.startup": "ip address add 10.6.0.2/24 dev eth0\n",
	})
	startLab(t, dir)
	if got := execOut(t, dir, "new", "uname", "-r"); !strings.HasPrefix(got, "7.") {
		t.Errorf("new runs %q, not the 7.x kernel", got)
	}
	if out := execOut(t, dir, "new", "ping", "-c", "2", "-W", "3", "10.6.0.2"); !strings.Contains(out, " 0% packet loss") {
		t.Errorf("7.x (bess) -> 6.1 (daemon):\n%s", out)
	}
}
