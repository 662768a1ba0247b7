//go:build e2e

package packaging

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2ESwitchServiceRuns does what uml-switch.service does, without
// systemd: the helper prepares as root, then starts the switch with the
// unit's umask and a NOTIFY_SOCKET, dropping to an unprivileged user. The
// switch must keep the helper's pid (systemd takes READY=1 from the main
// pid only), own a group-writable, not world-writable socket, and a second
// start on the same socket must fail rather than run a second switch. The
// switch is the project's uml_switch when the tree has it, which must also
// say READY=1; until then the C original stands in for it.
func TestE2ESwitchServiceRuns(t *testing.T) {
	need(t, "setpriv", "sh")
	root := projectRoot(t)
	sw, ours := "/usr/bin/uml_switch", false
	if _, err := os.Stat(filepath.Join(root, "cmd", "uml_switch")); err == nil {
		sw, ours = filepath.Join(t.TempDir(), "uml_switch"), true
		mustRun(t, 3*time.Minute, root, nil, "go", "build", "-o", sw, "./cmd/uml_switch")
	} else if _, err := os.Stat(sw); err != nil {
		t.Fatalf("no uml_switch to run: cmd/uml_switch is not in the tree and the C original (Debian package uml-utilities) is missing: %v", err)
	} else {
		t.Log("cmd/uml_switch is not in the tree yet: running the C original, which sends no READY=1")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody is needed: %v", err)
	}

	// A directory others can traverse, as /run is.
	dir, err := os.MkdirTemp("", "umlutils-unit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bindir := filepath.Join(dir, "bin")
	if err := os.Mkdir(bindir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(sw, filepath.Join(bindir, "uml_switch")); err != nil {
		t.Fatal(err)
	}
	ctl := filepath.Join(dir, "run", "uml_switch.ctl")
	defaults := filepath.Join(dir, "uml-utilities")
	settings := "# as Debian's /etc/default/uml-utilities\nUML_SWITCH_USER=nobody\nUML_SWITCH_CTL=" + ctl + "\n"
	if err := os.WriteFile(defaults, []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	notifyPath := filepath.Join(dir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	if err := os.Chmod(notifyPath, 0o777); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(root, "packaging", "uml-switch-service")
	env := []string{"UML_UTILITIES_DEFAULTS=" + defaults, "UMLUTILS_BINDIR=" + bindir, "NOTIFY_SOCKET=" + notifyPath}

	mustRun(t, 30*time.Second, dir, env, "sh", wrapper, "prepare")
	fi, err := os.Stat(filepath.Dir(ctl))
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != uid(t, nobody.Uid) {
		t.Fatalf("prepare did not make %s for nobody: %v", filepath.Dir(ctl), err)
	}

	start := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command("sh", "-c", `umask 0007; exec sh "$0" start`, wrapper)
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	first, out := start()
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	t.Cleanup(func() {
		_ = first.Process.Kill()
		<-exited
	})

	if ours {
		_ = notify.SetReadDeadline(time.Now().Add(15 * time.Second))
		buf := make([]byte, 4096)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				t.Fatalf("no READY=1 from uml_switch on NOTIFY_SOCKET: %v\n%s", err, out)
			}
			if strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
				break
			}
		}
		if _, err := os.Stat(ctl); err != nil {
			t.Errorf("READY=1 before the control socket exists: %v", err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(ctl); err == nil {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the switch exited (%v) before making %s:\n%s", err, ctl, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket %s after 15 s:\n%s", ctl, out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	exe, err := os.Readlink("/proc/" + strconv.Itoa(first.Process.Pid) + "/exe")
	if want, _ := filepath.EvalSymlinks(sw); err != nil || exe != want {
		t.Errorf("the unit's main pid runs %q (%v), want the switch %s itself", exe, err, want)
	}
	fi, err = os.Stat(ctl)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o770 || st.Uid != uid(t, nobody.Uid) {
		t.Errorf("control socket: mode %v, uid %d; want a socket 0770 owned by nobody (%s)", fi.Mode(), st.Uid, nobody.Uid)
	}
	c, err := net.DialTimeout("unix", ctl, 5*time.Second)
	if err != nil {
		t.Errorf("connecting to the switch: %v", err)
	} else {
		c.Close()
	}

	// A second start on the same socket must not become a second switch.
	second, out2 := start()
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("a second switch on %s exited 0; want a failure:\n%s", ctl, out2)
		}
	case <-time.After(15 * time.Second):
		_ = second.Process.Kill()
		<-done
		t.Errorf("a second switch on %s kept running:\n%s", ctl, out2)
	}
	select {
	case err := <-exited:
		exited <- err
		t.Errorf("the first switch died when the second started: %v\n%s", err, out)
	default:
	}
}

func uid(t *testing.T, s string) uint32 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}
