//go:build e2e

package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
	"github.com/umlutils/umlutils/mconsole"
)

// The kernel execs /usr/bin/uml_watchdog by absolute path (docs/protocols.md
// §6): the guest runs in a private mount namespace with ours bind-mounted
// over that path, leaving the system's file alone.
func withOurs() []string {
	return []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$UMLUTILS_WATCHDOG" /usr/bin/uml_watchdog && exec "$0" "$@"`}
}

// The guest opens /dev/watchdog (devtmpfs, which UML 6.1 mounts itself),
// pings it once and then stops feeding it while keeping it open: closing
// would stop the helper (the kernel closes its pipe). A second guest
// program runs beside, to see that it dies too.
const starveScript = `exec 3>/dev/watchdog || { echo WD-OPEN-FAILED; exit 1; }
echo ping >&3
sleep 300 &
echo WD-FED
sleep 300`

// helperIsOurs checks that the helper the kernel started is our binary.
func helperIsOurs(t *testing.T, pgid int, ours string) {
	t.Helper()
	want, err := os.Stat(ours)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if !strings.HasPrefix(string(cmdline), "/usr/bin/uml_watchdog\x00") {
				continue
			}
			if g, err := syscall.Getpgid(pid); err != nil || g != pgid {
				continue
			}
			got, err := os.Stat("/proc/" + e.Name() + "/exe")
			if err == nil && os.SameFile(got, want) {
				return
			}
			t.Fatalf("the guest started %q, not our helper", strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no uml_watchdog helper appeared in the guest's process group")
}

// -pid mode: after 60 s without a ping the guest is killed, with every
// process of it. The kernel is frozen with SIGSTOP first, as a hung kernel
// would be: it cannot act on the helper's SIGINTs and shut down by itself,
// so the helper's SIGKILL has to do the work. (A healthy UML 6.1 kernel
// exits on SIGINT and takes its processes with it; the C helper passes
// that case, but leaves a frozen guest's programs running.)
func TestE2EWatchdogPidKillsGuest(t *testing.T) {
	t.Parallel()
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_watchdog")
	g := b.Boot(t, testbed.GuestConfig{
		Timeout: 200 * time.Second,
		Prefix:  withOurs(),
		HostEnv: []string{"UMLUTILS_WATCHDOG=" + ours},
		Script:  starveScript,
	})
	g.WaitFor("WD-FED", 60*time.Second)
	fed := time.Now()
	helperIsOurs(t, g.Pid(), ours)
	if err := syscall.Kill(g.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	for syscall.Kill(g.Pid(), 0) == nil {
		if time.Since(fed) > 100*time.Second {
			t.Fatal("the guest still runs 100 s after its last ping")
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(fed)
	if took < 55*time.Second {
		t.Errorf("the guest died %v after its last ping, before the 60 s timeout", took)
	}
	// Nothing of the guest may be left: not its programs, not the helper.
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(-g.Pid(), 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("processes of the guest left after the watchdog killed it:\n%s", group(g.Pid()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("guest killed %v after its last ping", took.Round(time.Second))
}

// -mconsole mode: after 60 s without a ping a hang notification, with the
// kernel's 16-byte header, reaches the guest's notify socket.
func TestE2EWatchdogMconsoleNotifiesHang(t *testing.T) {
	t.Parallel()
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_watchdog")
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	g := b.Boot(t, testbed.GuestConfig{
		Timeout: 200 * time.Second,
		Prefix:  withOurs(),
		HostEnv: []string{"UMLUTILS_WATCHDOG=" + ours},
		Args:    []string{"mconsole=notify:" + path},
		Script:  starveScript,
	})
	g.WaitFor("WD-FED", 60*time.Second)
	fed := time.Now()
	helperIsOurs(t, g.Pid(), ours)

	conn.SetReadDeadline(time.Now().Add(100 * time.Second))
	buf := make([]byte, 1024)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no hang notification %v after the last ping: %v", time.Since(fed).Round(time.Second), err)
		}
		var nt mconsole.Notification
		if err := nt.UnmarshalBinary(buf[:n]); err != nil {
			t.Fatalf("notification % x: %v", buf[:n], err)
		}
		if nt.Type != mconsole.NotifyHang {
			continue // the socket notification sent at boot
		}
		if n != 16 {
			t.Errorf("hang notification is %d bytes (% x), want the kernel's 16", n, buf[:n])
		}
		if took := time.Since(fed); took < 55*time.Second {
			t.Errorf("hang notified %v after the last ping, before the 60 s timeout", took)
		}
		break
	}
	// The helper only reports; the guest lives on, and a lab tool would
	// now halt it through its console.
	if err := syscall.Kill(g.Pid(), 0); err != nil {
		t.Fatalf("the guest died in -mconsole mode: %v", err)
	}
	out, err := testbed.Run(b.Tool(t, "uml_mconsole"), g.UMID, "halt")
	if out != "OK \n" || err != nil {
		t.Fatalf("uml_mconsole halt: %q, %v", out, err)
	}
	if err := g.Wait(20 * time.Second); err != nil {
		t.Fatalf("after halt: %v", err)
	}
}

// group describes the processes of a process group, one per line.
func group(pgid int) string {
	var out strings.Builder
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err != nil || g != pgid {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		fmt.Fprintf(&out, "%d %s\n", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return out.String()
}
