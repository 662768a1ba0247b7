// Package testbed boots real User-Mode Linux kernels (Boot) and QEMU
// machines (BootQEMU) for the project's end-to-end tests, and finds the C
// originals they are compared with.
//
// It is test-only code: nothing installed imports it. The machine is prepared
// by provision.sh (run by `make e2e`); Get only checks that everything is
// there and fails the test, naming what is missing, when it is not.
//
// Facts it relies on are in docs/testbed.md (§4, §6): the host's root is the
// guest's root through hostfs, init is a shell script, unknown KEY=VALUE
// kernel arguments reach init as environment variables, and a guest is
// stopped by killing its whole process group (never the kernel process
// alone, which would leave traced guest programs running on the host).
package testbed

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/syncbuf"
)

// Kernel selects which UML kernel a guest boots.
type Kernel int

const (
	// Legacy is Debian 12's UML 6.1: legacy transports (daemon, ...) and
	// the vector ones.
	Legacy Kernel = iota
	// Modern is Debian unstable's UML 7.x: vector transports only.
	Modern
)

func (k Kernel) String() string {
	if k == Modern {
		return "UML 7.x"
	}
	return "UML 6.1"
}

// Bed is a provisioned test bed.
type Bed struct {
	Root     string // the project's root (holds go.mod)
	Cache    string // provision.sh's cache directory
	Legacy   string // path of the UML 6.1 kernel
	Modern   string // path of the UML 7.x kernel
	Preload  string // the ptrace shim for UML 6.1 (docs/testbed.md §3)
	ToolsDir string // where Tool builds the project's commands
}

var (
	bedOnce sync.Once
	bed     *Bed
	bedErr  error

	toolMu    sync.Mutex
	toolBuilt = map[string]error{}
)

// Get returns the test bed, or fails the test saying what is missing and
// that `make e2e` (testbed/provision.sh) provisions it.
func Get(t testing.TB) *Bed {
	t.Helper()
	bedOnce.Do(func() { bed, bedErr = find() })
	if bedErr != nil {
		t.Fatalf("test bed not ready: %v (run `make e2e`, which runs internal/testbed/provision.sh as root)", bedErr)
	}
	return bed
}

// CacheDir is where provision.sh keeps what it fetched.
func CacheDir() string {
	if d := os.Getenv("UMLUTILS_TESTBED"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "umlutils", "testbed")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "umlutils", "testbed")
}

func find() (*Bed, error) {
	root, err := projectRoot()
	if err != nil {
		return nil, err
	}
	b := &Bed{
		Root:   root,
		Cache:  CacheDir(),
		Legacy: "/usr/bin/linux.uml",
	}
	b.Modern = filepath.Join(b.Cache, "sid", "linux")
	var missing []string
	for _, f := range []struct{ path, what string }{
		{b.Legacy, "UML 6.1 kernel (Debian package user-mode-linux)"},
		{b.Modern, "UML 7.x kernel (unpacked from Debian unstable by provision.sh)"},
		{"/usr/bin/uml_switch", "C uml_switch (Debian package uml-utilities)"},
		{"/usr/bin/gcc", "gcc (to build the ptrace shim)"},
	} {
		if _, err := os.Stat(f.path); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %s", f.what, f.path))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing %s", strings.Join(missing, "; "))
	}
	if b.Preload, err = buildPreload(root, b.Cache); err != nil {
		return nil, err
	}
	b.ToolsDir, err = os.MkdirTemp("", "umlutils-tools-")
	if err != nil {
		return nil, err
	}
	return b, nil
}

func projectRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// buildPreload compiles the ptrace shim once; parallel test binaries race
// harmlessly because each writes its own file and renames it into place.
func buildPreload(root, cache string) (string, error) {
	src := filepath.Join(root, "lab", "shim", "ptracefix.c")
	out := filepath.Join(cache, "ptracefix.so")
	si, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	if oi, err := os.Stat(out); err == nil && oi.ModTime().After(si.ModTime()) {
		return out, nil
	}
	tmp := fmt.Sprintf("%s.%d", out, os.Getpid())
	cmd := exec.Command("gcc", "-shared", "-fPIC", "-O2", "-o", tmp, src, "-ldl")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the ptrace shim: %v: %s", err, msg)
	}
	return out, os.Rename(tmp, out)
}

// Tool builds the project's command cmd/NAME once per test process and
// returns the binary's path.
func (b *Bed) Tool(t testing.TB, name string) string {
	t.Helper()
	return BuildTool(t, b.Root, b.ToolsDir, name)
}

// BuildTool builds ./cmd/NAME of the module at root into dir (once per
// process) and returns the binary's path. Usable without a provisioned bed.
func BuildTool(t testing.TB, root, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	toolMu.Lock()
	defer toolMu.Unlock()
	err, done := toolBuilt[out]
	if !done {
		cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
		cmd.Dir = root
		if msg, e := cmd.CombinedOutput(); e != nil {
			err = fmt.Errorf("go build ./cmd/%s: %v: %s", name, e, msg)
		}
		toolBuilt[out] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Original returns the path of a C original from Debian's uml-utilities.
func Original(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/lib/uml"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("the C original %s is not installed (Debian package uml-utilities; `make e2e` installs it)", name)
	return ""
}

// GuestConfig describes one guest.
type GuestConfig struct {
	Kernel Kernel
	// UMID names the guest (~/.uml/UMID); empty picks a unique one.
	UMID string
	// Mem is the guest's memory, "64M" if empty.
	Mem string
	// Script is the body of the guest's init (/bin/sh). proc and sysfs are
	// mounted and PATH set before it; the guest powers off after it.
	// Environment variables from Env are available to it.
	Script string
	// Args are extra kernel arguments: "eth0=daemon,,unix,/tmp/sw",
	// "ubd1=cow,backing", "vec0:transport=bess,dst=/tmp/s", ...
	Args []string
	// Env becomes KEY=VALUE kernel arguments, which the kernel hands to init.
	Env map[string]string
	// Prefix runs the kernel under another command, e.g.
	// {"ip", "netns", "exec", ns} or an `unshare -m` wrapper; it must exec
	// the kernel in the same process group.
	Prefix []string
	// Extra environment for the kernel process (not the guest).
	HostEnv []string
	// Timeout bounds the guest's whole life; 60 s if zero.
	Timeout time.Duration
}

// Guest is a running guest: a UML kernel (Boot) or a QEMU machine
// (BootQEMU).
type Guest struct {
	UMID string
	Dir  string // a temporary directory of the test's, for the guest's files

	t       testing.TB
	cmd     *exec.Cmd
	mu      sync.Mutex
	cond    *sync.Cond
	console bytes.Buffer
	exited  bool
	exitErr error
	timer   *time.Timer
	stopped bool
	uml     bool // a UML kernel: ~/.uml/UMID is its to clean up
}

func newGuest(t testing.TB, name string) *Guest {
	g := &Guest{UMID: name, Dir: t.TempDir(), t: t}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// UniqueName returns a short random name with the given prefix, for umids,
// socket files and namespaces.
func UniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Boot starts a guest. It is stopped (its whole process group killed and
// ~/.uml/UMID removed) when the test ends, or when cfg.Timeout passes.
func (b *Bed) Boot(t testing.TB, cfg GuestConfig) *Guest {
	t.Helper()
	if cfg.UMID == "" {
		cfg.UMID = UniqueName("ut")
	}
	if cfg.Mem == "" {
		cfg.Mem = "64M"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	g := newGuest(t, cfg.UMID)
	g.uml = true

	script := filepath.Join(g.Dir, "init.sh")
	if err := os.WriteFile(script, []byte(initScript(cfg.UMID, cfg.Script)), 0o755); err != nil {
		t.Fatal(err)
	}
	kernel := b.Legacy
	if cfg.Kernel == Modern {
		kernel = b.Modern
	}
	args := []string{
		"umid=" + cfg.UMID, "mem=" + cfg.Mem,
		"root=/dev/root", "rootfstype=hostfs", "rootflags=/", "rw",
		"init=" + script, "con0=fd:0,fd:1", "con=null", "ssl=null",
		"testbed_guest=" + cfg.UMID,
	}
	args = append(args, cfg.Args...)
	for k, v := range cfg.Env {
		args = append(args, k+"="+v)
	}
	argv := append(append([]string{}, cfg.Prefix...), kernel)
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = g.Dir
	cmd.Env = append(os.Environ(), cfg.HostEnv...)
	if cfg.Kernel == Legacy {
		cmd.Env = append(cmd.Env, "LD_PRELOAD="+b.Preload)
	}
	g.start(t, cmd, cfg.Timeout, fmt.Sprintf("booting %s guest %s", cfg.Kernel, cfg.UMID))
	return g
}

// start runs cmd (a guest's kernel or emulator, possibly under a prefix) in
// its own process group with its output as the console, and arranges for the
// group to be killed after timeout or when the test ends, whichever is first.
func (g *Guest) start(t testing.TB, cmd *exec.Cmd, timeout time.Duration, what string) {
	t.Helper()
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = (*consoleWriter)(g)
	cmd.Stderr = (*consoleWriter)(g)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Helpers the kernel runs (telnetd, port-helper) start sessions of their
	// own and keep the console pipe open: Wait must not block on them.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	g.cmd = cmd
	go func() {
		err := cmd.Wait()
		g.mu.Lock()
		g.exited, g.exitErr = true, err
		g.cond.Broadcast()
		g.mu.Unlock()
	}()
	g.timer = time.AfterFunc(timeout, func() {
		g.mu.Lock()
		fmt.Fprintf(&g.console, "\n[testbed: guest %s killed after %v]\n", g.UMID, timeout)
		g.mu.Unlock()
		g.Kill()
	})
	t.Cleanup(func() {
		g.Kill()
		if t.Failed() {
			t.Logf("console of guest %s:\n%s", g.UMID, tail(g.Console(), 4000))
		}
	})
}

type consoleWriter Guest

func (w *consoleWriter) Write(p []byte) (int, error) {
	g := (*Guest)(w)
	g.mu.Lock()
	g.console.Write(p)
	g.cond.Broadcast()
	g.mu.Unlock()
	return len(p), nil
}

// initScript wraps the test's body. The power-off at the end is guarded so
// that it can only ever run inside this guest: only its /proc/cmdline has the
// testbed_guest= word Boot adds.
func initScript(umid, body string) string {
	return `#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
in_guest() { grep -q "testbed_guest=` + umid + `" /proc/cmdline 2>/dev/null && [ "$(cat /proc/sys/kernel/hostname)" = "(none)" ]; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
in_guest || { echo "testbed: not inside guest ` + umid + `, refusing to run"; exit 1; }
ip link set lo up 2>/dev/null
echo "TESTBED-BOOTED $(uname -r)"
(
` + body + `
)
echo "TESTBED-DONE rc=$?"
in_guest && echo o > /proc/sysrq-trigger
sleep 5
`
}

// Console returns everything the guest has printed so far.
func (g *Guest) Console() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.console.String()
}

// WaitFor waits until the console shows marker and returns the console up to
// and including the marker's line. It fails the test when the guest exits or
// the timeout passes first.
func (g *Guest) WaitFor(marker string, timeout time.Duration) string {
	g.t.Helper()
	out, err := g.waitFor(marker, timeout)
	if err != nil {
		g.t.Fatalf("guest %s: %v\nconsole:\n%s", g.UMID, err, tail(g.Console(), 4000))
	}
	return out
}

// TryWaitFor is WaitFor that returns an error instead of failing the test.
func (g *Guest) TryWaitFor(marker string, timeout time.Duration) (string, error) {
	return g.waitFor(marker, timeout)
}

func (g *Guest) waitFor(marker string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	wake := time.AfterFunc(timeout, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer wake.Stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		s := g.console.String()
		if i := strings.Index(s, marker); i >= 0 {
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				return s[:i+j+1], nil
			}
			if g.exited {
				return s, nil
			}
		}
		if g.exited {
			return s, fmt.Errorf("exited (%v) before printing %q", g.exitErr, marker)
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("no %q on the console within %v", marker, timeout)
		}
		g.cond.Wait()
	}
}

// Wait waits for the guest's kernel process to exit (a guest that powers
// off exits non-zero; that is expected and not reported).
func (g *Guest) Wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		g.mu.Lock()
		exited := g.exited
		g.mu.Unlock()
		if exited {
			g.Kill() // helpers may outlive the kernel process
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("guest %s still running after %v", g.UMID, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid is the kernel process's pid (also its process group id).
func (g *Guest) Pid() int { return g.cmd.Process.Pid }

// Kill stops the guest: SIGKILL to its whole process group, then, for a UML
// guest, removes ~/.uml/UMID. Safe to call more than once.
func (g *Guest) Kill() {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	g.stopped = true
	g.mu.Unlock()
	g.timer.Stop()
	pgid := g.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	// Wait until no process of the group is left, bounded.
	for i := 0; i < 200; i++ {
		if err := syscall.Kill(-pgid, 0); err == syscall.ESRCH {
			break
		}
		time.Sleep(10 * time.Millisecond)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	g.mu.Lock()
	for !g.exited {
		g.cond.Wait()
	}
	g.mu.Unlock()
	if g.uml {
		home, _ := os.UserHomeDir()
		_ = os.RemoveAll(filepath.Join(home, ".uml", g.UMID))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// NetNS creates a network namespace for the test, with its loopback up, and
// deletes it (after killing whatever still runs in it) when the test ends.
func NetNS(t testing.TB) string {
	t.Helper()
	name := UniqueName("umlutils-")
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	if out, err := exec.Command("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v: %s", name, err, out)
	}
	return name
}

// Daemon is a long-running host process a test started (a switch, a
// listener); it is killed by pid when the test ends.
type Daemon struct {
	Cmd *exec.Cmd
	out *syncbuf.Buffer
}

// Start runs argv in its own process group with stdout and stderr captured,
// and kills the group when the test ends.
func Start(t testing.TB, argv ...string) *Daemon {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	d := &Daemon{Cmd: cmd, out: &syncbuf.Buffer{}}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", argv, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("output of %v:\n%s", argv, tail(d.out.String(), 4000))
		}
	})
	return d
}

// Output returns what the daemon printed so far.
func (d *Daemon) Output() string { return d.out.String() }

// WaitForFile waits until path exists.
func WaitForFile(t testing.TB, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %v", path, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Run runs a short command with a 15 s bound and returns its combined output.
func Run(argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%v: no exit within 15 s", argv)
	}
}
