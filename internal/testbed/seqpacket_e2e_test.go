//go:build e2e

package testbed_test

import (
	"testing"

	"golang.org/x/sys/unix"
)

// listenSeqpacket accepts connections on a Unix seqpacket socket at path and
// delivers every packet received on them.
func listenSeqpacket(t *testing.T, path string) <-chan []byte {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	frames := make(chan []byte, 64)
	t.Cleanup(func() { unix.Shutdown(fd, unix.SHUT_RDWR); unix.Close(fd) })
	go func() {
		for {
			c, _, err := unix.Accept(fd)
			if err != nil {
				return
			}
			go func() {
				defer unix.Close(c)
				buf := make([]byte, 65536)
				for {
					n, err := unix.Read(c, buf)
					if err != nil || n == 0 {
						return
					}
					select {
					case frames <- append([]byte(nil), buf[:n]...):
					default:
					}
				}
			}()
		}
	}()
	return frames
}
