//go:build e2e

package lab_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/cow"
	"github.com/umlutils/umlutils/internal/syncbuf"
	"github.com/umlutils/umlutils/internal/testbed"
	"github.com/umlutils/umlutils/internal/testbed/labimage"
	"github.com/umlutils/umlutils/lab/guest"
)

// debugfs runs one debugfs request against the image (no loop mount) and
// returns its standard output.
func debugfs(t *testing.T, img, req string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", req, img).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q %s: %v", req, img, err)
	}
	return string(out)
}

func exists(t *testing.T, img, path string) bool {
	t.Helper()
	cmd := exec.Command("debugfs", "-R", "stat "+path, img)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs stat %s: %v: %s", path, err, out)
	}
	return !strings.Contains(string(out), "File not found")
}

func TestE2EImageContents(t *testing.T) {
	img := labimage.Path(t)
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	var info struct {
		BuildSeconds float64  `json:"build_seconds"`
		Command      []string `json:"command"`
	}
	if b, err := os.ReadFile(img + ".json"); err == nil {
		_ = json.Unmarshal(b, &info)
	}
	t.Logf("image %s: %.1f GiB apparent, %.0f MiB on disk, built in %.0f s", img,
		float64(fi.Size())/(1<<30), float64(st.Blocks*512)/(1<<20), info.BuildSeconds)
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("image mode %v, want 0444", fi.Mode().Perm())
	}
	if st.Blocks*512 > 1<<30 {
		t.Errorf("image takes %d bytes on disk: not sparse?", st.Blocks*512)
	}

	// What labs expect, by the file that proves it.
	for _, p := range []string{
		"/usr/lib/frr/ospfd", "/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/bin/vtysh",
		"/usr/lib/frr/frr-reload.py", "/etc/frr/daemons",
		"/usr/sbin/ip", "/usr/bin/ping", "/usr/sbin/ifconfig", "/usr/sbin/route", "/usr/bin/netstat",
		"/usr/sbin/ifup", "/usr/bin/tcpdump", "/usr/bin/traceroute", "/usr/sbin/iptables",
		"/usr/bin/host", "/usr/bin/dig", "/usr/sbin/named", "/etc/init.d/named", "/etc/init.d/bind",
		"/usr/bin/curl", "/usr/bin/ps", "/usr/sbin/modprobe", "/usr/sbin/ethtool", "/usr/bin/nc",
		"/usr/sbin/apache2", "/etc/init.d/frr",
		"/usr/share/heartbeat/hb_standby", "/etc/init.d/heartbeat", "/etc/ha.d/resource.d/IPaddr",
		"/usr/sbin/rpc.mountd", "/usr/sbin/rpcbind", "/etc/init.d/nfs-kernel-server",
		"/usr/lib/systemd/systemd", "/usr/sbin/init",
	} {
		if !exists(t, img, p) {
			t.Errorf("%s is not in the image", p)
		}
	}
	// Nothing per machine, no kernel modules, no umlab.
	if s := debugfs(t, img, "cat /etc/machine-id"); s != "" {
		t.Errorf("/etc/machine-id holds %q, want empty", s)
	}
	for _, p := range []string{"/etc/hostname", "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ed25519_key", "/var/lib/dbus/machine-id", "/usr/bin/umlab", "/usr/local/bin/umlab"} {
		if exists(t, img, p) {
			t.Errorf("%s is in the image", p)
		}
	}
	if s := debugfs(t, img, "ls /usr/lib/modules"); strings.Contains(s, "6.") {
		t.Errorf("kernel modules in the image: %s", s)
	}
	if s := debugfs(t, img, "cat /etc/resolv.conf"); s != "" {
		t.Errorf("/etc/resolv.conf carries the build host's %q", s)
	}
	if s := debugfs(t, img, "cat /etc/shadow"); !strings.HasPrefix(s, "root::") && !strings.Contains(s, "\nroot::") {
		t.Errorf("root's password is not empty: %q", firstLine(s, "root:"))
	}
	// Merged /usr.
	for _, l := range []string{"bin", "sbin", "lib"} {
		if s := debugfs(t, img, "stat /"+l); !strings.Contains(s, "Type: symlink") || !strings.Contains(s, `"usr/`+l+`"`) {
			t.Errorf("/%s is not the merged-/usr symlink: %s", l, firstLine(s, "Type:"))
		}
	}
	// Lab daemons do not start at boot.
	var wants strings.Builder
	for _, d := range []string{"multi-user.target.wants", "sockets.target.wants", "timers.target.wants", "sysinit.target.wants", "remote-fs.target.wants"} {
		wants.WriteString(debugfs(t, img, "ls /etc/systemd/system/"+d))
	}
	for _, u := range []string{"frr", "heartbeat", "named", "bind9", "nfs-server", "rpcbind", "apache2", "radvd", "logd", "apt-daily"} {
		if strings.Contains(wants.String(), u) {
			t.Errorf("%s is enabled at boot", u)
		}
	}
	for _, rc := range []string{"rc2.d", "rc3.d", "rc5.d"} {
		s := debugfs(t, img, "ls /etc/"+rc)
		if m := regexp.MustCompile(`\bS[0-9][0-9](frr|heartbeat|named|nfs-kernel-server|rpcbind|apache2|radvd|logd)\b`).FindAllString(s, -1); m != nil {
			t.Errorf("/etc/%s starts lab daemons: %v", rc, m)
		}
	}
	if s := debugfs(t, img, "cat /etc/frr/vtysh.conf"); !strings.Contains(s, "no service integrated-vtysh-config") {
		t.Errorf("vtysh.conf: %q", s)
	}
	if exists(t, img, "/etc/frr/frr.conf") {
		t.Error("Debian's /etc/frr/frr.conf is in the image")
	}
	if testing.Verbose() {
		t.Logf("enabled units:\n%s", wants.String())
	}
}

func firstLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, prefix) {
			return l
		}
	}
	return ""
}

// The probe the guest runs once systemd has finished booting: it reports
// on the console, then powers the guest off.
const probeScript = `#!/bin/sh
exec >/dev/console 2>&1
state=$(systemctl is-system-running --wait)
echo "UMLAB-STATE $state"
echo UMLAB-TIME
systemd-analyze time
echo UMLAB-BLAME
systemd-analyze blame --no-pager | head -n 25
echo UMLAB-CHAIN
systemd-analyze critical-chain --no-pager multi-user.target
echo UMLAB-RUNNING
systemctl list-units --no-pager --no-legend --plain --state=running --type=service
echo UMLAB-FAILED
systemctl list-units --no-pager --no-legend --plain --state=failed
echo "UMLAB-ID $(cat /etc/machine-id) $(hostname)"
# Disabled at boot, but a startup file can start it.
systemctl start frr
echo "UMLAB-FRR $(systemctl is-active frr) $(pgrep -x zebra >/dev/null && echo zebra-running)"
echo UMLAB-END
systemctl poweroff
`

type bootResult struct {
	console   string
	multiUser time.Duration // host time from start to "Reached target multi-user.target"
	report    time.Duration // host time until the probe reported
}

// systemd's status line, with the colour codes it puts around the name.
var reachedMultiUser = regexp.MustCompile(`Reached target (\x1b\[[0-9;]*m)*multi-user\.target`)

// bootImage boots the image with Debian's UML 6.1 over a fresh COW file.
// The probe runs from systemd's debug shell (systemd.debug_shell: bash on
// tty9, here UML's con9 on two pipes): once its prompt shows, the test
// types a command that mounts the probe's directory with hostfs and runs
// it. Nothing is added to the image or to the boot transaction (a
// systemd.run= command would replace the default target).
func bootImage(t *testing.T, img string, extra ...string) bootResult {
	t.Helper()
	bed := testbed.Get(t)
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.MkdirAll(probe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(probe, "report.sh"), []byte(probeScript), 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.cow")
	if _, err := cow.Create(disk, img, cow.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	umid := testbed.UniqueName("img")
	args := []string{
		"umid=" + umid, "mem=128M", "ubd0=" + disk + "," + img, "root=/dev/ubda", "rw",
		"con0=fd:0,fd:1", "con=null", "con9=fd:3,fd:4", "ssl=null",
		"systemd.hostname=imgtest", "systemd.show_status=1", "systemd.debug_shell",
	}
	args = append(args, extra...)
	cmd := exec.Command(bed.Legacy, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+bed.Preload)
	var out, shell syncbuf.Buffer
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = []*os.File{inR, outW}
	// Its own process group: stopping the guest kills the whole group,
	// never the kernel process alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	go func() { _, _ = io.Copy(&shell, outR) }()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		inW.Close()
		outR.Close()
		home, _ := os.UserHomeDir()
		_ = os.RemoveAll(filepath.Join(home, ".uml", umid))
	}
	t.Cleanup(stop)

	var res bootResult
	typed := false
	deadline := time.Now().Add(5 * time.Minute)
	for {
		s := out.String()
		if res.multiUser == 0 && reachedMultiUser.MatchString(s) {
			res.multiUser = time.Since(start)
		}
		if !typed && strings.Contains(shell.String(), "# ") {
			fmt.Fprintf(inW, "mount -t hostfs -o %s none /mnt && sh /mnt/report.sh\n", probe)
			typed = true
		}
		if strings.Contains(s, "UMLAB-END") {
			res.report = time.Since(start)
			break
		}
		select {
		case <-exited:
			t.Fatalf("guest exited before its probe reported; console:\n%s\ndebug shell:\n%s", tail(s, 6000), tail(shell.String(), 2000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no probe report within 5 minutes; console:\n%s\ndebug shell:\n%s", tail(s, 6000), tail(shell.String(), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The probe powers the guest off.
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Errorf("guest did not power off within 60 s of its report")
	}
	res.console = strings.ReplaceAll(out.String(), "\r\n", "\n")
	return res
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// section returns the console lines between "UMLAB-name" and the next
// UMLAB- marker.
func section(console, name string) string {
	i := strings.Index(console, "UMLAB-"+name+"\n")
	if i < 0 {
		return ""
	}
	rest := console[i+len("UMLAB-"+name+"\n"):]
	if j := strings.Index(rest, "UMLAB-"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func checkBoot(t *testing.T, res bootResult, what string) {
	t.Helper()
	c := res.console
	if res.multiUser == 0 {
		t.Errorf("%s: the console never showed multi-user.target reached", what)
	}
	t.Logf("%s: multi-user.target after %.1f s (host clock), probe report after %.1f s", what, res.multiUser.Seconds(), res.report.Seconds())
	t.Logf("%s: %s", what, firstLine(c, "UMLAB-STATE"))
	t.Logf("%s: systemd-analyze time:\n%s", what, section(c, "TIME"))
	t.Logf("%s: systemd-analyze blame (top):\n%s", what, section(c, "BLAME"))
	t.Logf("%s: critical chain:\n%s", what, section(c, "CHAIN"))
	t.Logf("%s: failed units:\n%s", what, section(c, "FAILED"))
	running := section(c, "RUNNING")
	t.Logf("%s: running services:\n%s", what, running)
	for _, d := range []string{"frr", "heartbeat", "named", "nfs-server", "nfs-kernel-server", "rpcbind", "apache2", "radvd", "ssh"} {
		if regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(d) + `\.service`).MatchString(running) {
			t.Errorf("%s: %s.service runs after boot; lab startup files start it", what, d)
		}
	}
	if !strings.Contains(c, "UMLAB-FRR active zebra-running") {
		t.Errorf("%s: systemctl start frr: %q", what, firstLine(c, "UMLAB-FRR"))
	}
	id := regexp.MustCompile(`UMLAB-ID ([0-9a-f]{32}) imgtest`).FindStringSubmatch(c)
	if id == nil {
		t.Errorf("%s: no machine-id/hostname report: %q", what, firstLine(c, "UMLAB-ID"))
	}
}

func TestE2EImageBoot(t *testing.T) {
	img := labimage.Path(t)
	res := bootImage(t, img)
	checkBoot(t, res, "untuned boot")
	if t.Failed() {
		t.Logf("console:\n%s", tail(res.console, 8000))
	}
}

// TestE2EImageBootMasked boots with the units guest.Masked names
// masked (here with systemd.mask= on the kernel command line; the runner
// uses runtime symlinks in /run/systemd/system) and compares.
func TestE2EImageBootMasked(t *testing.T) {
	img := labimage.Path(t)
	var extra []string
	for _, u := range guest.Masked {
		extra = append(extra, "systemd.mask="+u)
	}
	res := bootImage(t, img, extra...)
	checkBoot(t, res, "masked boot")
	if t.Failed() {
		t.Logf("console:\n%s", tail(res.console, 8000))
	}
	fmt.Fprintf(os.Stderr, "masked: %v\n", guest.Masked)
}
