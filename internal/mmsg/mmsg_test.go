package mmsg

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// A full 110-byte abstract address with NULs inside survives a round trip:
// bound, reported by recvmmsg byte for byte, usable as a sendmmsg target.
func TestRawAbstractAddresses(t *testing.T) {
	name := func(tag byte) []byte {
		a := make([]byte, SizeofSockaddrUnix)
		binary.LittleEndian.PutUint16(a, unix.AF_UNIX)
		a[3], a[5], a[109] = tag, 0x7f, tag // NULs before, between and after
		return a
	}
	sock := func(addr []byte) int {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		if err := Bind(fd, addr); err != nil {
			t.Fatalf("bind: %v", err)
		}
		return fd
	}
	aAddr, bAddr := name('a'), name('b')
	a, b := sock(aAddr), sock(bAddr)
	sb := NewSendBatch(4)
	frames := [][]byte{[]byte("one"), bytes.Repeat([]byte{9}, 65535)}
	for _, f := range frames {
		sb.Add(bAddr, f)
	}
	sb.Flush(a, 0, func(i int, err unix.Errno) { t.Fatalf("datagram %d: %v", i, err) })
	rb := NewRecvBatch(4, 65536)
	n, err := rb.Recv(b, 0, unix.MSG_DONTWAIT)
	if err != nil || n != 2 {
		t.Fatalf("recvmmsg: %d, %v", n, err)
	}
	for i, f := range frames {
		if !bytes.Equal(rb.Frame(i), f) || rb.Truncated(i) {
			t.Errorf("datagram %d: %d bytes", i, len(rb.Frame(i)))
		}
		if !bytes.Equal(rb.Name(i), aAddr) {
			t.Errorf("sender %d: % x", i, rb.Name(i))
		}
	}
	// A failed datagram is reported and skipped; the rest still go out.
	sb.Add(name('z'), []byte("nobody"))
	sb.Add(bAddr, []byte("two"))
	failed := -1
	sb.Flush(a, 0, func(i int, err unix.Errno) { failed = i })
	if failed != 0 {
		t.Errorf("failure reported for %d, want 0", failed)
	}
	if n, err := rb.Recv(b, 0, unix.MSG_DONTWAIT); n != 1 || err != nil || string(rb.Frame(0)) != "two" {
		t.Errorf("after a failure: %d %v", n, err)
	}
}
