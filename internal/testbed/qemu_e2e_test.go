//go:build e2e

package testbed_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
)

// listenStream accepts connections on a Unix stream socket at path, as the
// switch's -stream transport will, and delivers them.
func listenStream(t *testing.T, path string) <-chan net.Conn {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 8)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			conns <- c
		}
	}()
	return conns
}

func accept(t *testing.T, conns <-chan net.Conn, g *testbed.Guest) net.Conn {
	t.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(30 * time.Second):
		t.Fatalf("QEMU guest %s did not connect to the stream socket within 30 s\nconsole:\n%s", g.UMID, g.Console())
		return nil
	}
}

// readFrame reads one frame of QEMU's stream netdev: its length as 4 bytes
// big-endian, then the Ethernet frame.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 14 || n > 65536 {
		return nil, fmt.Errorf("length prefix %d (% x) is no Ethernet frame length", n, hdr)
	}
	f := make([]byte, n)
	if _, err := io.ReadFull(r, f); err != nil {
		return nil, fmt.Errorf("frame of %d bytes cut short: %w", n, err)
	}
	return f, nil
}

func parseMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A QEMU guest's virtio-net on `-netdev stream` reaches a listener written
// here: every frame carries a correct 4-byte big-endian length (the stream
// stays in step frame after frame) and the guest's MAC, and the guest's ARP
// request for its ping target arrives. Also measures the boot under TCG.
func TestE2EQEMUGuestStreamReachesListener(t *testing.T) {
	b := testbed.Get(t)
	sock := filepath.Join(t.TempDir(), "stream.sock")
	conns := listenStream(t, sock)
	mac := testbed.RandomMAC()
	start := time.Now()
	g := b.BootQEMU(t, testbed.QEMUConfig{
		StreamSocket: sock,
		MAC:          mac,
		Script: `echo "UPTIME $(cat /proc/uptime)"
ip link set eth0 up && ip addr add 10.0.0.7/24 dev eth0
ping -c 3 -i 0.2 -W 1 10.0.0.8; echo SENT`,
	})
	c := accept(t, conns, g)
	t.Logf("QEMU connected %v after start", time.Since(start).Round(time.Millisecond))
	g.WaitFor("TESTBED-BOOTED", 90*time.Second)
	t.Logf("boot under TCG: %v from start to the script running", time.Since(start).Round(time.Millisecond))
	up := g.WaitFor("UPTIME", 10*time.Second)
	t.Logf("guest's own uptime then: %s", strings.TrimSpace(up[strings.LastIndex(up, "UPTIME"):]))

	want := parseMAC(t, mac)
	target := net.IPv4(10, 0, 0, 8).To4()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for i := 1; ; i++ {
		f, err := readFrame(c)
		if err != nil {
			t.Fatalf("frame %d from the guest: %v", i, err)
		}
		if !bytes.Equal(f[6:12], want) {
			t.Fatalf("frame %d (%d bytes) has source MAC %v, want the guest's %v: stream out of step?", i, len(f), net.HardwareAddr(f[6:12]), want)
		}
		// ARP (0x0806) request whose target protocol address is the
		// ping target: Ethernet header 14 bytes, target IP at ARP offset 24.
		if len(f) >= 42 && f[12] == 0x08 && f[13] == 0x06 && bytes.Equal(f[38:42], target) {
			t.Logf("ARP request for %v in frame %d (%d bytes), %v after start", target, i, len(f), time.Since(start).Round(time.Millisecond))
			break
		}
	}
	g.WaitFor("SENT", 60*time.Second)
}

// relay forwards length-prefixed frames between two stream connections, as
// a two-port hub would, checking each frame's framing on the way.
func relay(t *testing.T, a, b net.Conn) (ab, ba *atomic.Int64) {
	ab, ba = new(atomic.Int64), new(atomic.Int64)
	pump := func(from, to net.Conn, n *atomic.Int64) {
		for {
			f, err := readFrame(from)
			if err != nil {
				if !strings.Contains(err.Error(), "use of closed") && err != io.EOF {
					t.Logf("relay: %v", err)
				}
				return
			}
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], uint32(len(f)))
			if _, err := to.Write(append(hdr[:], f...)); err != nil {
				return
			}
			n.Add(1)
		}
	}
	go pump(a, b, ab)
	go pump(b, a, ba)
	return ab, ba
}

// Two QEMU guests ping each other through a relay of their stream
// connections: the machinery issue 5's switch tests use, end to end.
func TestE2EQEMUGuestsPingThroughStreamRelay(t *testing.T) {
	b := testbed.Get(t)
	sock := filepath.Join(t.TempDir(), "relay.sock")
	conns := listenStream(t, sock)
	start := time.Now()
	peer := b.BootQEMU(t, testbed.QEMUConfig{
		StreamSocket: sock,
		Script: `ip addr add 10.0.0.2/24 dev eth0 && ip link set eth0 up
echo PEER-UP; sleep 110`,
	})
	c1 := accept(t, conns, peer)
	pinger := b.BootQEMU(t, testbed.QEMUConfig{
		StreamSocket: sock,
		// The peer may still be booting: wait for its first answer
		// (bounded), then measure.
		Script: `ip addr add 10.0.0.1/24 dev eth0 && ip link set eth0 up
i=0; until ping -c 1 -W 1 10.0.0.2 >/dev/null; do i=$((i+1)); [ $i -ge 60 ] && break; done
ping -c 5 -i 0.2 -W 5 10.0.0.2 && echo PING-OK
s=$(cut -d' ' -f1 /proc/uptime)
ping -q -c 40 -i 0.05 -W 5 10.0.0.2
echo "FAST-PING $s $(cut -d' ' -f1 /proc/uptime)"`,
	})
	c2 := accept(t, conns, pinger)
	ab, ba := relay(t, c1, c2)
	peer.WaitFor("PEER-UP", 90*time.Second)
	t.Logf("peer's script running %v after start", time.Since(start).Round(time.Millisecond))
	out := pinger.WaitFor("TESTBED-DONE", 100*time.Second)
	t.Logf("pinger done %v after start", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(out, "PING-OK") || !strings.Contains(out, "5 packets received") {
		t.Fatalf("ping between the QEMU guests failed:\n%s", out)
	}
	if i := strings.Index(out, "round-trip"); i >= 0 {
		t.Logf("%s", strings.TrimSpace(strings.SplitN(out[i:], "\n", 2)[0]))
	}
	// Issue 5's loss test pings at 0.05 s: busybox's ping must keep that
	// pace under TCG (40 pings in about 2 s, not 40).
	if !strings.Contains(out, "40 packets transmitted, 40 packets received") {
		t.Errorf("fast ping lost packets:\n%s", out)
	}
	var s0, s1 float64
	if i := strings.Index(out, "FAST-PING "); i < 0 {
		t.Errorf("no FAST-PING line")
	} else if _, err := fmt.Sscanf(out[i:], "FAST-PING %g %g", &s0, &s1); err != nil || s1-s0 > 6 {
		t.Errorf("40 pings at -i 0.05 took %.2f s (%v)", s1-s0, err)
	} else {
		t.Logf("40 pings at -i 0.05 took %.2f s in the guest", s1-s0)
	}
	t.Logf("relay forwarded %d frames from the peer, %d from the pinger", ab.Load(), ba.Load())
	if err := pinger.Wait(30 * time.Second); err != nil {
		t.Errorf("pinger did not power off: %v", err)
	}
}
