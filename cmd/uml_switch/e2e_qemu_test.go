//go:build e2e

package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
)

// Three kinds of guests on one switch: a UML 6.1 guest on daemon, a UML 7.x
// guest on bess and a QEMU guest on -stream ping each other.
func TestE2EDaemonBessAndQEMUGuestsPing(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_switch")
	dir := t.TempDir()
	ctl, bess, stream := filepath.Join(dir, "sw.ctl"), filepath.Join(dir, "bess"), filepath.Join(dir, "stream")
	sw := testbed.Start(t, ours, "-unix", ctl, "-bess", bess, "-stream", stream)
	testbed.WaitForFile(t, stream, 5*time.Second)
	// Each pinger first waits (bounded) for its peers to answer: the QEMU
	// guest boots slowly under TCG.
	waitPeer := func(ip string) string {
		return `i=0; until ping -c 1 -W 1 ` + ip + ` >/dev/null 2>&1; do i=$((i+1)); [ $i -ge 90 ] && break; done
`
	}
	end := "sleep 150\n" // killed when the test ends
	qemu := b.BootQEMU(t, testbed.QEMUConfig{StreamSocket: stream, Timeout: 170 * time.Second,
		Script: `ip addr add 10.0.7.3/24 dev eth0 && ip link set eth0 up
` + waitPeer("10.0.7.1") + `ping -c 3 -i 0.2 -W 5 10.0.7.1 && echo Q-TO-DAEMON-OK
` + waitPeer("10.0.7.2") + `ping -c 3 -i 0.2 -W 5 10.0.7.2 && echo Q-TO-BESS-OK
` + end})
	modern := b.Boot(t, testbed.GuestConfig{Kernel: testbed.Modern, Timeout: 170 * time.Second,
		Args: []string{"vec0:transport=bess,dst=" + bess},
		Script: `ip link set vec0 up && ip addr add 10.0.7.2/24 dev vec0
` + waitPeer("10.0.7.3") + `ping -c 3 -i 0.2 -W 5 10.0.7.3 && echo BESS-TO-Q-OK
` + end})
	legacy := b.Boot(t, testbed.GuestConfig{Timeout: 170 * time.Second,
		Args: []string{"eth0=daemon,,unix," + ctl},
		Script: `ip addr add 10.0.7.1/24 dev eth0 && ip link set eth0 up
` + waitPeer("10.0.7.2") + `ping -c 3 -i 0.2 -W 5 10.0.7.2 && echo DAEMON-TO-BESS-OK
` + waitPeer("10.0.7.3") + `ping -c 3 -i 0.2 -W 5 10.0.7.3 && echo DAEMON-TO-Q-OK
` + end})
	for _, c := range []struct {
		g *testbed.Guest
		m string
	}{{legacy, "DAEMON-TO-BESS-OK"}, {legacy, "DAEMON-TO-Q-OK"}, {modern, "BESS-TO-Q-OK"},
		{qemu, "Q-TO-DAEMON-OK"}, {qemu, "Q-TO-BESS-OK"}} {
		c.g.WaitFor(c.m, 150*time.Second)
	}
	if n := strings.Count(sw.Output(), "New connection"); n != 3 {
		t.Errorf("%d ports came up, want 3:\n%s", n, sw.Output())
	}
}
