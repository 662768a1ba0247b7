package lab

import (
	"strings"
	"testing"
)

func TestParseSpans(t *testing.T) {
	good := "# spans\nA vni=42 10.0.0.1 10.0.0.2\nB vni=7 port=4790 10.0.0.1 10.0.0.2 fd00::3 # three hosts\n"
	spans, err := ParseSpans("lab.vxlan", strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 || spans[0].VNI != 42 || spans[0].Port != 4789 || spans[1].Port != 4790 || len(spans[1].Hosts) != 3 {
		t.Errorf("%+v", spans)
	}
	for _, c := range []struct{ name, in, want string }{
		{"no vni", "A 10.0.0.1 10.0.0.2\n", "lab.vxlan:1: domain A: no vni"},
		{"one host", "A vni=1 10.0.0.1\n", "at least two"},
		{"bad vni", "A vni=16777216 10.0.0.1 10.0.0.2\n", "vni"},
		{"bad host", "\nA vni=1 10.0.0.1 host2\n", "lab.vxlan:2: \"host2\" is not an IP address"},
		{"twice", "A vni=1 10.0.0.1 10.0.0.2\nA vni=2 10.0.0.1 10.0.0.2\n", "declared twice"},
		{"same port", "A vni=1 10.0.0.1 10.0.0.2\nB vni=2 10.0.0.1 10.0.0.2\n", "both use UDP port 4789"},
		{"bad name", "a/b vni=1 10.0.0.1 10.0.0.2\n", "domain"},
		{"unknown setting", "A vni=1 mtu=9000 10.0.0.1 10.0.0.2\n", "unknown setting"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSpans("lab.vxlan", strings.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}

// A span's switch argument: this host's own address (bindable) is local,
// the others are remotes.
func TestSpanVXLANArg(t *testing.T) {
	s := Span{Domain: "A", VNI: 5, Port: 4789, Hosts: []string{"192.0.2.7", "127.0.0.1"}, Line: 1}
	got, err := s.vxlanArg()
	if err != nil || got != "vni=5,local=127.0.0.1:4789,remote=192.0.2.7:4789" {
		t.Errorf("%q %v", got, err)
	}
	s.Hosts = []string{"192.0.2.7", "192.0.2.8"}
	if _, err := s.vxlanArg(); err == nil || !strings.Contains(err.Error(), "none of") {
		t.Errorf("no local address: %v", err)
	}
}
