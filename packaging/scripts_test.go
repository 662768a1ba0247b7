package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestVersion runs packaging/version.sh in a scratch git repository through
// the life of a project: before the first tag, on a tag, after it, dirty,
// on a release candidate, and outside git.
func TestVersion(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed: %v", err)
	}
	src := filepath.Join(projectRoot(t), "packaging", "version.sh")
	script, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "packaging"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("packaging/version.sh", string(script))
	write("VERSION", "0.3.0\n")
	env := []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t.invalid", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@t.invalid", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}
	git := func(args ...string) string {
		out, err := runBounded(30*time.Second, dir, env, append([]string{"git"}, args...)...)
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(out)
	}
	version := func() string {
		out, err := runBounded(30*time.Second, dir, env, "sh", "packaging/version.sh")
		if err != nil {
			t.Fatalf("version.sh: %v\n%s", err, out)
		}
		return strings.TrimSpace(out)
	}

	if v := version(); v != "0.3.0" {
		t.Errorf("outside git: %q, want VERSION's 0.3.0", v)
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-qm", "one")
	hash := git("log", "-1", "--format=%h")
	if v := version(); !regexp.MustCompile(`^0\.3\.0~git\d{8}\.` + hash + `$`).MatchString(v) {
		t.Errorf("before any tag: %q, want 0.3.0~gitYYYYMMDD.%s", v, hash)
	}
	git("tag", "v0.3.0")
	if v := version(); v != "0.3.0" {
		t.Errorf("on v0.3.0: %q", v)
	}
	write("VERSION", "0.4.0\n")
	if v := version(); v != "0.3.0.dirty" {
		t.Errorf("on v0.3.0, modified: %q", v)
	}
	git("commit", "-qam", "two")
	hash = git("log", "-1", "--format=%h")
	if v := version(); v != "0.3.0+git1.g"+hash {
		t.Errorf("a commit after v0.3.0: %q, want 0.3.0+git1.g%s", v, hash)
	}
	git("tag", "v0.4.0-rc1")
	if v := version(); v != "0.4.0~rc1" {
		t.Errorf("on v0.4.0-rc1: %q", v)
	}
	// Both package managers must order these as the project does.
	for _, pair := range [][2]string{{"0.3.0~git20261127.abc", "0.3.0"}, {"0.3.0", "0.3.0+git1.gabc"}, {"0.4.0~rc1", "0.4.0"}} {
		if out, err := exec.Command("dpkg", "--compare-versions", pair[0], "lt", pair[1]).CombinedOutput(); err != nil {
			t.Errorf("dpkg: %s is not before %s: %v %s", pair[0], pair[1], err, out)
		}
		if rpmdev, err := exec.LookPath("rpm"); err == nil {
			out, _ := exec.Command(rpmdev, "--eval", "%{lua: print(rpm.vercmp('"+pair[0]+"', '"+pair[1]+"'))}").Output()
			if strings.TrimSpace(string(out)) != "-1" {
				t.Errorf("rpm: vercmp(%s, %s) = %q, want -1", pair[0], pair[1], out)
			}
		}
	}
}

// TestSwitchWrapper runs the unit's helper with a settings file of the
// test's: what it starts, when it declines to, and what it prepares.
func TestSwitchWrapper(t *testing.T) {
	wrapper := filepath.Join(projectRoot(t), "packaging", "uml-switch-service")
	dir := t.TempDir()
	defaults := filepath.Join(dir, "uml-utilities")
	bindir := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bindir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A stand-in tunctl that records how it was called.
	if err := os.WriteFile(filepath.Join(bindir, "tunctl"), []byte("#!/bin/sh\necho \"$@\" > \""+dir+"/tunctl.args\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(settings string, args ...string) (string, error) {
		if err := os.WriteFile(defaults, []byte(settings), 0o644); err != nil {
			t.Fatal(err)
		}
		return runBounded(10*time.Second, dir, []string{"UML_UTILITIES_DEFAULTS=" + defaults, "UMLUTILS_BINDIR=" + bindir},
			append([]string{"sh", wrapper}, args...)...)
	}
	asRoot := os.Geteuid() == 0

	out, err := run("", "show")
	want := bindir + "/uml_switch -unix /run/uml-utilities/uml_switch.ctl"
	if asRoot {
		want = "setpriv --reuid=uml-net --regid=uml-net --init-groups -- " + want
	}
	if err != nil || strings.TrimSpace(out) != want {
		t.Errorf("defaults: %q, %v; want %q", out, err, want)
	}
	// Debian's example settings, as a shell fragment.
	ctl := filepath.Join(dir, "sock", "sw.ctl")
	out, err = run("UML_SWITCH_OPTIONS=\"-hub -tap umlutilsnotap0\"\nUML_SWITCH_USER=root\nUML_SWITCH_CTL="+ctl+"\n", "show")
	if want := bindir + "/uml_switch -hub -tap umlutilsnotap0 -unix " + ctl; err != nil || strings.TrimSpace(out) != want {
		t.Errorf("settings: %q, %v; want %q", out, err, want)
	}
	if _, err := run("UML_SWITCH_START=false\n", "condition"); err == nil {
		t.Errorf("UML_SWITCH_START=false: condition passed")
	}
	if _, err := run("UML_SWITCH_START=true\n", "condition"); err != nil {
		t.Errorf("UML_SWITCH_START=true: condition failed: %v", err)
	}
	if out, err := run("", "bogus"); err == nil || !strings.Contains(out, "usage") {
		t.Errorf("bad mode: %q, %v", out, err)
	}
	if out, err := run("UML_SWITCH_USER=umlutils-no-such-user\n", "prepare"); err == nil || !strings.Contains(out, "umlutils-no-such-user") {
		t.Errorf("unknown user: %q, %v", out, err)
	}
	if !asRoot {
		return
	}
	// prepare: the socket's directory, and a tap that does not exist yet
	// (the name is one no host has; tunctl is the stand-in).
	out, err = run("UML_SWITCH_OPTIONS=\"-tap umlutilsnotap0\"\nUML_SWITCH_USER=root\nUML_SWITCH_CTL="+ctl+"\n", "prepare")
	if err != nil {
		t.Fatalf("prepare: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Dir(ctl)); err != nil || !fi.IsDir() {
		t.Errorf("prepare made no socket directory: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "tunctl.args")); err != nil || string(b) != "-u root -t umlutilsnotap0\n" {
		t.Errorf("tunctl called with %q, %v; want -u root -t umlutilsnotap0", b, err)
	}
}

// TestUnitFile checks the unit's promises that systemd-analyze cannot:
// readiness from the switch, the helper's path in the manifest, no
// world-writable socket.
func TestUnitFile(t *testing.T) {
	root := projectRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "packaging", "uml-switch.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"Type=notify", "NotifyAccess=main", "UMask=0007",
		"ExecCondition=" + HelperDir + "/uml-switch-service condition",
		"ExecStartPre=" + HelperDir + "/uml-switch-service prepare",
		"ExecStart=" + HelperDir + "/uml-switch-service start",
		"WantedBy=multi-user.target",
	} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("uml-switch.service lacks %q", want)
		}
	}
	if strings.Contains(unit, "chmod") || strings.Contains(unit, "0777") {
		t.Errorf("uml-switch.service makes something world-writable")
	}
	tmpfiles, err := os.ReadFile(filepath.Join(root, "packaging", "tmpfiles.conf"))
	if err != nil || !strings.Contains(string(tmpfiles), "\nd /run/uml-utilities 0755 uml-net uml-net -\n") {
		t.Errorf("tmpfiles.conf does not make /run/uml-utilities for uml-net: %v", err)
	}
	sysusers, err := os.ReadFile(filepath.Join(root, "packaging", "sysusers.conf"))
	if err != nil || !regexp.MustCompile(`(?m)^u uml-net - `).Match(sysusers) {
		t.Errorf("sysusers.conf does not create uml-net: %v", err)
	}
}

// TestShellSyntax parses every shell script the packages run with the
// system's POSIX sh (dash on Debian), which has no bash extensions. They are
// never run here: they would change this machine's users and services.
func TestShellSyntax(t *testing.T) {
	root := projectRoot(t)
	for _, f := range []string{"scripts/postinstall.sh", "scripts/preremove.sh", "scripts/postremove.sh",
		"uml-switch-service", "version.sh", "dist.sh"} {
		if out, err := exec.Command("sh", "-n", filepath.Join(root, "packaging", f)).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
}

// TestMaintainerScripts runs the install and removal scripts with every
// program they call replaced by a recorder (PATH holds nothing else), under
// both Debian's and RPM's argument conventions.
func TestMaintainerScripts(t *testing.T) {
	root := projectRoot(t)
	stubs := t.TempDir()
	logf := filepath.Join(stubs, "calls.log")
	rec := "#!/bin/sh\necho \"${0##*/} $*\" >> " + logf + "\n"
	for _, c := range []string{"systemd-sysusers", "systemd-tmpfiles", "systemctl", "useradd"} {
		if err := os.WriteFile(filepath.Join(stubs, c), []byte(rec), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// getent finds no uml-net, as on a machine that never had the C package.
	if err := os.WriteFile(filepath.Join(stubs, "getent"), []byte(rec+"exit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/ls", filepath.Join(stubs, "ls")); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	// What the host's own state adds: a running systemd, and the C
	// package's init script enabled (the migration case).
	_, err = os.Stat("/run/systemd/system")
	systemd := err == nil
	oldEnabled, _ := filepath.Glob("/etc/rc[2345].d/S*uml-utilities")

	calls := func(script string, args ...string) string {
		os.Remove(logf)
		cmd := exec.Command(sh, append([]string{filepath.Join(root, "packaging", "scripts", script)}, args...)...)
		cmd.Env = []string{"PATH=" + stubs}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", script, args, err, out)
		}
		b, _ := os.ReadFile(logf)
		return string(b)
	}
	reload := ""
	if systemd {
		reload = "systemctl daemon-reload\n"
	}
	setup := "systemd-sysusers umlutils.conf\nsystemd-tmpfiles --create umlutils.conf\n" + reload
	migrate := ""
	if len(oldEnabled) > 0 {
		migrate = "systemctl enable uml-switch.service\n"
		if systemd {
			migrate += "systemctl start uml-switch.service\n"
		}
	}
	for _, c := range []struct {
		script string
		args   []string
		want   string
	}{
		{"postinstall.sh", []string{"configure", ""}, setup + migrate},
		{"postinstall.sh", []string{"1"}, setup + migrate},
		{"postinstall.sh", []string{"configure", "0.1.0-1"}, setup},
		{"postinstall.sh", []string{"2"}, setup},
		{"preremove.sh", []string{"upgrade", "0.2.0-1"}, ""},
		{"preremove.sh", []string{"1"}, ""},
		{"postremove.sh", []string{"remove"}, reload},
		{"postremove.sh", []string{"0"}, reload},
	} {
		t.Run(c.script+" "+strings.Join(c.args, " "), func(t *testing.T) {
			if got := calls(c.script, c.args...); got != c.want {
				t.Errorf("%s %q called:\n%s\nwant:\n%s", c.script, c.args, got, c.want)
			}
		})
	}
	for _, args := range [][]string{{"remove"}, {"0"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			want := "systemctl disable uml-switch.service\n"
			if systemd {
				want = "systemctl stop uml-switch.service\n" + want
			}
			if got := calls("preremove.sh", args...); got != want {
				t.Errorf("preremove.sh %q called:\n%s\nwant:\n%s", args, got, want)
			}
		})
	}
	// Without systemd-sysusers the account is made with useradd.
	os.Remove(filepath.Join(stubs, "systemd-sysusers"))
	if got := calls("postinstall.sh", "configure", "0.1.0-1"); !strings.HasPrefix(got, "getent passwd uml-net\nuseradd --system --user-group ") || !strings.Contains(got, " uml-net\n") {
		t.Errorf("without systemd-sysusers:\n%s", got)
	}
}
