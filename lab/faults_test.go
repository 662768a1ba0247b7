package lab

import (
	"strings"
	"testing"
)

func TestCheckFault(t *testing.T) {
	for _, c := range []struct {
		f  LinkFault
		ok bool
	}{
		{"down", true}, {"up", true}, {"clear", true}, {"loss 20", true}, {"loss 5 in", true},
		{"delay 100", true}, {"delay 100 10", true}, {"delay 50 0 in", true},
		{"", false}, {"down now", false}, {"loss", false}, {"loss x", false}, {"delay", false},
		{"delay 1 2 3", false}, {"explode", false},
	} {
		t.Run(string(c.f), func(t *testing.T) {
			if err := checkFault(c.f); (err == nil) != c.ok {
				t.Errorf("checkFault(%q) = %v", c.f, err)
			}
		})
	}
}

// The faults kept for a port: one per kind and direction, the newest
// wins, up undoes down, clear forgets them all.
func TestMergeFault(t *testing.T) {
	var cur []string
	for _, step := range []struct {
		f    LinkFault
		want string
	}{
		{"down", "down"},
		{"loss 20", "down|loss 20"},
		{"loss 5 in", "down|loss 20|loss 5 in"},
		{"loss 30", "down|loss 5 in|loss 30"},
		{"up", "loss 5 in|loss 30"},
		{"delay 100 10", "loss 5 in|loss 30|delay 100 10"},
		{"clear", ""},
	} {
		cur = mergeFault(cur, step.f)
		if got := strings.Join(cur, "|"); got != step.want {
			t.Fatalf("after %q: %q, want %q", step.f, got, step.want)
		}
	}
}

func TestParseDiskValue(t *testing.T) {
	for _, c := range []struct {
		v    string
		file string
		size int64
		raw  bool
		ok   bool
	}{
		{"shared.disk", "shared.disk", 256 << 20, false, true},
		{"shared.disk:1G", "shared.disk", 1 << 30, false, true},
		{"d/x.img:64M", "d/x.img", 64 << 20, false, true},
		{"x.img:raw", "x.img", 256 << 20, true, true},
		{"x.img:4M", "", 0, false, false},
		{"x.img:lots", "", 0, false, false},
		{":1G", "", 0, false, false},
		{"a,b.img", "", 0, false, false},
	} {
		t.Run(c.v, func(t *testing.T) {
			file, size, raw, err := parseDiskValue(c.v)
			if (err == nil) != c.ok || (c.ok && (file != c.file || size != c.size || raw != c.raw)) {
				t.Errorf("parseDiskValue(%q) = %q %d %v %v", c.v, file, size, raw, err)
			}
		})
	}
}
