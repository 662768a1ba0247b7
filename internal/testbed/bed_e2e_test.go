//go:build e2e

package testbed_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
)

// Two UML 6.1 guests ping each other across the C uml_switch (daemon
// transport): proves the legacy kernel boots here and its network works.
func TestE2ETwoLegacyGuestsPingAcrossCSwitch(t *testing.T) {
	b := testbed.Get(t)
	sock := filepath.Join(t.TempDir(), "sw.ctl")
	sw := testbed.Start(t, "stdbuf", "-o0", testbed.Original(t, "uml_switch"), "-unix", sock)
	testbed.WaitForFile(t, sock, 5*time.Second)

	ping := b.Boot(t, testbed.GuestConfig{
		Args: []string{"eth0=daemon,,unix," + sock},
		Script: `ip addr add 10.0.0.1/24 dev eth0 && ip link set eth0 up
sleep 1
ping -c 3 -i 0.2 -W 5 10.0.0.2 && echo PING-OK`,
	})
	peer := b.Boot(t, testbed.GuestConfig{
		Args: []string{"eth0=daemon,,unix," + sock},
		Script: `ip addr add 10.0.0.2/24 dev eth0 && ip link set eth0 up
echo PEER-UP; sleep 30`,
	})
	peer.WaitFor("PEER-UP", 30*time.Second)
	out := ping.WaitFor("TESTBED-DONE", 40*time.Second)
	if !strings.Contains(out, "PING-OK") {
		t.Fatalf("ping across the C switch failed:\n%s", out)
	}
	if !strings.Contains(ping.Console(), "daemon backend (uml_switch version 3)") {
		t.Errorf("guest log lacks the daemon backend line")
	}
	if got := strings.Count(sw.Output(), "New connection"); got < 2 {
		t.Errorf("switch saw %d connections, want 2:\n%s", got, sw.Output())
	}
}

// A UML 7.x guest's vec0 (transport bess) delivers frames to a seqpacket
// listener written here.
func TestE2EModernGuestBessReachesSeqpacketListener(t *testing.T) {
	b := testbed.Get(t)
	sock := filepath.Join(t.TempDir(), "bess.sock")
	frames := listenSeqpacket(t, sock)
	g := b.Boot(t, testbed.GuestConfig{
		Kernel: testbed.Modern,
		Args:   []string{"vec0:transport=bess,dst=" + sock},
		Script: `ip link set vec0 up && ip addr add 10.0.0.7/24 dev vec0
ping -c 3 -i 0.2 -W 1 10.0.0.8; echo SENT`,
	})
	g.WaitFor("SENT", 40*time.Second)
	select {
	case f := <-frames:
		if len(f) < 14 {
			t.Fatalf("frame of %d bytes is no Ethernet frame", len(f))
		}
		t.Logf("first frame: %d bytes, ethertype %#04x", len(f), uint16(f[12])<<8|uint16(f[13]))
	case <-time.After(5 * time.Second):
		t.Fatal("no frame from the guest's vec0 reached the seqpacket listener")
	}
}

// The C uml_mconsole answers `version` from a running guest.
func TestE2ECMconsoleVersion(t *testing.T) {
	b := testbed.Get(t)
	g := b.Boot(t, testbed.GuestConfig{Script: `echo GUEST-READY; sleep 30`})
	g.WaitFor("GUEST-READY", 30*time.Second)
	out, err := testbed.Run(testbed.Original(t, "uml_mconsole"), g.UMID, "version")
	if err != nil {
		t.Fatalf("uml_mconsole %s version: %v: %s", g.UMID, err, out)
	}
	if !strings.HasPrefix(out, "OK Linux") || !strings.Contains(out, "6.1") {
		t.Fatalf("unexpected answer %q", out)
	}
}
