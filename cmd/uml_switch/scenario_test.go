package main

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/swload"
	vswitch "github.com/umlutils/umlutils/switch"
)

var bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// scenario drives a switch at ctl through what its stdout reports: two
// guests, learning, a MAC moving between ports, rejected requests, a third
// guest, disconnects. Without garbage it prints the same on the C switch
// and on ours (a version-2 request wedges the C switch's bookkeeping: it
// then misses a Disconnect).
func scenario(t *testing.T, ctl string, garbage bool) {
	t.Helper()
	pause := func() { time.Sleep(80 * time.Millisecond) }
	dial := func() *swload.Client {
		c, err := swload.Dial(ctl, 3, "")
		if err != nil {
			t.Fatal(err)
		}
		pause()
		return c
	}
	sendf := func(c *swload.Client, dst, src [6]byte) {
		if err := c.SendTo(swload.Frame(dst, src, 0x88b5, 60)); err != nil {
			t.Fatal(err)
		}
		pause()
	}
	a, b := dial(), dial()
	ma, mb := swload.MAC(0, 1), swload.MAC(1, 1)
	sendf(a, bcast, ma)
	sendf(b, ma, mb)
	sendf(b, bcast, ma) // ma moves to b's port
	// A version-2 request and some garbage cost only their connections.
	v2 := make([]byte, 124)
	binary.LittleEndian.PutUint32(v2, vswitch.Magic)
	binary.LittleEndian.PutUint32(v2[4:], 2)
	for _, junk := range [][]byte{v2, []byte("garbage!")} {
		if !garbage {
			break
		}
		c, err := net.Dial("unix", ctl)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(junk)
		pause()
		c.Close()
		pause()
	}
	e := dial()
	sendf(a, bcast, ma) // and back to a's port
	for _, c := range []*swload.Client{a, b, e} {
		c.Close()
		pause()
	}
}
