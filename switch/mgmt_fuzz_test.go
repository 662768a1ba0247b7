package vswitch

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzCommand: any management line gets a reply or a *CommandError, never
// a panic, and ServeManagement always ends a reply with OK or ERR.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"ports", "ports json", "macs json", "stats", "port 7 down", "port 7 loss 50 in",
		"port 7 delay 100 20", "port x up", "hub on", "hub maybe", "help", "port 1 delay 1e309", "port -1 loss NaN", ""} {
		f.Add(s)
	}
	sw := New(Config{})
	f.Fuzz(func(t *testing.T, line string) {
		if fs := strings.Fields(line); len(fs) > 0 && fs[0] == "pcap" {
			return // would create files
		}
		if _, err := sw.Command(line); err != nil {
			if _, ok := err.(*CommandError); !ok {
				t.Fatalf("%q: error %T %v", line, err, err)
			}
		}
		var out bytes.Buffer
		sw.ServeManagement(strings.NewReader(strings.ReplaceAll(line, "\n", " ")+"\n"), &out)
		if s := out.String(); s != "" && !strings.HasSuffix(s, "OK\n") && !strings.Contains(s, "ERR ") {
			t.Fatalf("%q: reply %q ends with neither OK nor ERR", line, s)
		}
	})
}
