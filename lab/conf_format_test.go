package lab

import (
	"strings"
	"testing"
)

func TestDetectFormat(t *testing.T) {
	cases := []struct {
		name, conf string
		want       Format
		reason     string // substring of FormatReason
		conflict   bool
	}{
		{"nothing", "a[0]=A\na[mem]=64\na[exec]=x\n", FormatNetkit, "no line marks a dialect; netkit assumed", false},
		{"empty", "", FormatNetkit, "no line marks", false},
		{"machines", "machines=\"a\"\na[0]=A\n", FormatNetkit, "lab.conf:1: machines=", false},
		{"netkit tap", "a[0]=tap,1.2.3.4,1.2.3.5\n", FormatNetkit, "lab.conf:1: tap,TAP_ADDR,GUEST_ADDR", false},
		{"hostwd", "a[hostwd]=/x\n", FormatNetkit, "[hostwd]", false},
		{"netkit options only", "a[kernel]=/k\na[con0]=none\n", FormatNetkit, "lab.conf:1: [kernel] (2 Netkit options)", false},
		{"lab machines", "LAB_MACHINES=a\na[0]=A\n", FormatNetkitJH, "lab.conf:1: LAB_MACHINES=", false},
		{"jh mount", "a[mount]=/a,/b\n", FormatNetkitJH, "[mount]", false},
		{"jh tap", "a[0]=ext,1.2.3.4,1.2.3.5\n", FormatNetkitJH, "DOMAIN,TAP_ADDR,GUEST_ADDR", false},
		{"jh and netkit options", "LAB_MACHINES=a\na[kernel]=/k\n", FormatNetkitJH, "(1 netkit-jh markers, 1 Netkit options)", false},
		{"lab name", "LAB_NAME=x\n", FormatKathara, "lab.conf:1: LAB_NAME=", false},
		{"image", "a[0]=A\na[image]=kathara/base\n", FormatKathara, "lab.conf:2: [image]", false},
		{"mac", "a[0]=A/02:00:00:00:00:01\n", FormatKathara, "MAC address after '/'", false},
		{"comment", "a[0]=A # x\n", FormatKathara, "trailing # comment", false},
		{"sysctl env cpus", "a[sysctl]=net.a.b=1\na[env]=A=1\na[cpus]=1\n", FormatKathara, "(3 kathara markers)", false},
		{"bridged", "a[bridged]=true\n", FormatKathara, "[bridged]", false},
		{"kathara wins majority", "LAB_MACHINES=a\na[image]=x\na[sysctl]=net.a.b=1\n", FormatKathara, "majority", true},
		{"kathara wins tie", "LAB_MACHINES=a\na[image]=x\n", FormatKathara, "majority", true},
		{"netkit wins majority", "a[image]=x\nmachines=a\na[kernel]=/k\n", FormatNetkit, "majority", true},
		{"jh over 2.8", "LAB_MACHINES=a\na[mount]=x\nmachines=a\n", FormatNetkitJH, "majority", true},
		{"2.8 on jh tie", "LAB_MACHINES=a\nmachines=a\n", FormatNetkit, "majority", true},
		{"unknown option marks nothing", "a[frob]=1\n", FormatNetkit, "no line marks", false},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			conf, err := ParseConf("lab.conf", strings.NewReader(c.conf))
			if err != nil {
				t.Fatal(err)
			}
			f, reason, ws := conf.DetectFormat()
			if f != c.want || !strings.Contains(reason, c.reason) {
				t.Errorf("DetectFormat = %s (%s), want %s (...%s...)", f, reason, c.want, c.reason)
			}
			if c.conflict != (len(ws) == 1) {
				t.Errorf("warnings %v, conflict %v", ws, c.conflict)
			}
		})
	}
}

func TestFormatString(t *testing.T) {
	for f, s := range map[Format]string{FormatUnknown: "unknown", FormatNetkit: "netkit", FormatNetkitJH: "netkit-jh", FormatKathara: "kathara", Format(42): "unknown"} {
		if f.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(f), f.String(), s)
		}
		if g, err := ParseFormat(s); s != "unknown" && (err != nil || g != f) {
			t.Errorf("ParseFormat(%q) = %v, %v", s, g, err)
		}
	}
	if _, err := ParseFormat("docker"); err == nil {
		t.Error("ParseFormat(docker) succeeded")
	}
}

func TestLoadFormatOverride(t *testing.T) {
	l, err := loadConf(t, "a[0]=A\n", "")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := LoadWith(l.Dir, LoadOptions{Format: FormatKathara})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Format != FormatKathara || l2.FormatReason != "format given: kathara" {
		t.Fatalf("format %s (%s)", l2.Format, l2.FormatReason)
	}
	if got, want := l2.Machines[0].Interfaces[0].MAC.String(), MACFor(FormatKathara, "a", 0).String(); got != want {
		t.Errorf("MAC %s, want Kathará's %s", got, want)
	}
}
