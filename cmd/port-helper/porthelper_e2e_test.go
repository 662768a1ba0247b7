//go:build e2e

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
)

// The C helper and ours, spawned the same way by a harness playing the
// UML's side, do the same: one message whose body is the helper's pid and
// which carries the helper's terminal, the same abstract peer name with
// -uml-socket, and both stay alive through SIGHUP.
func TestE2EPortHelperMatchesC(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "port-helper")
	orig := testbed.Original(t, "port-helper")
	for _, viaPath := range []bool{false, true} {
		want := playUML(t, orig, viaPath)
		got := playUML(t, ours, viaPath)
		if got != want {
			t.Errorf("viaPath=%v:\n ours %+v\nC    %+v", viaPath, got, want)
		}
		if !got.pidIsHelpers || !got.sameTerminal || !got.terminalWorked || !got.aliveAfterHUP {
			t.Errorf("viaPath=%v: the hand-over is incomplete: %+v", viaPath, got)
		}
	}
}

// inTelnetd is an in.telnetd for the UML to exec. Debian 12 ships only
// inetutils' telnetd (/usr/sbin/telnetd, no in.telnetd, no -L), so -L
// HELPER, what UML 6.1 passes, becomes inetutils' -E HELPER.
const inTelnetd = `#!/bin/sh
if [ "$1" = -L ]; then exec /usr/sbin/telnetd -h -E "$2"; fi
exec /usr/sbin/telnetd "$@"
`

// A UML 6.1 guest with con1=port:PORT, in a namespace of the test's: the
// kernel runs telnetd with UML_PORT_HELPER (ours) for a telnet client in
// the namespace, which reaches a shell on the guest's /dev/tty1 and runs a
// command there.
func TestE2EPortHelperTelnetToGuestConsole(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "port-helper")
	if _, err := os.Stat("/usr/sbin/telnetd"); err != nil {
		t.Fatalf("telnetd is not installed (Debian package telnetd): %v", err)
	}
	if _, err := exec.LookPath("telnet"); err != nil {
		t.Fatalf("telnet is not installed (Debian package telnet): %v", err)
	}
	ns := testbed.NetNS(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "in.telnetd"), []byte(inTelnetd), 0o755); err != nil {
		t.Fatal(err)
	}
	const port = "9123"
	g := b.Boot(t, testbed.GuestConfig{
		Args:    []string{"con1=port:" + port},
		HostEnv: []string{"UML_PORT_HELPER=" + ours, "PATH=" + bin + ":" + os.Getenv("PATH")},
		Prefix:  []string{"ip", "netns", "exec", ns},
		Script: `echo GUEST-READY
setsid sh -c 'exec sh -i </dev/tty1 >/dev/tty1 2>&1' &
sleep 50`,
		Timeout: 90 * time.Second,
	})
	// telnetd and the helper start their own sessions, out of reach of the
	// guest's process-group kill, and the helper inherits the kernel's
	// descriptors (its console pipe among them): kill everything in the
	// namespace first, or the guest's cleanup waits for that pipe forever.
	t.Cleanup(func() { killNamespace(t, ns, g.Pid()) })
	g.WaitFor("GUEST-READY", 30*time.Second)

	// The client types one command after telnet negotiation settled, then
	// waits for its output before closing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "sh", "-c",
		`(sleep 3; printf 'echo PH-$((6*7)) $(uname -r)\r\n'; sleep 4) | telnet 127.0.0.1 `+port)
	out, _ := client.CombinedOutput()
	if !strings.Contains(string(out), "PH-42 6.1") {
		t.Fatalf("the guest's shell did not answer over telnet through our port-helper; client saw:\n%s", out)
	}
}

// killNamespace SIGKILLs the guest's process group and then every process
// left in ns, until none is, bounded to 5 s.
func killNamespace(t *testing.T, ns string, pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	for i := 0; i < 50; i++ {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		if err != nil || len(strings.Fields(string(out))) == 0 {
			return
		}
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("processes still running in namespace %s", ns)
}
