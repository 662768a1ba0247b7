//go:build linux

package term

import (
	"os"
	"testing"

	"github.com/creack/pty"
)

func TestIsTerminal(t *testing.T) {
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	defer pts.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, c := range []struct {
		name string
		f    *os.File
		want bool
	}{
		{"pty", pts, true},
		{"pipe", r, false},
		{"null", mustOpen(t, os.DevNull), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := IsTerminal(c.f); got != c.want {
				t.Errorf("IsTerminal(%s) = %v, want %v", c.name, got, c.want)
			}
		})
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
