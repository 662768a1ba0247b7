//go:build e2e

package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
)

// result is what one tunctl invocation did.
type result struct {
	stdout, stderr string
	code           int
}

// inNS runs argv inside network namespace ns, bounded to 15 s.
func inNS(t *testing.T, ns string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%v in %s: %v", argv, ns, err)
	}
	return r
}

// sysAttrs reads what the kernel reports for a tun/tap device inside ns;
// "" when the device does not exist.
func sysAttrs(t *testing.T, ns, dev string) string {
	t.Helper()
	r := inNS(t, ns, "sh", "-c", "cd /sys/class/net/"+dev+" 2>/dev/null && cat owner group tun_flags")
	return strings.Join(strings.Fields(r.stdout), " ")
}

// The same invocations of the C tunctl and ours, each in its own network
// namespace, print the same, exit the same and leave devices with the same
// owner, group and flags; the devices persist after the tool exits and -d
// removes them. Runs as root and, for the permission errors, as nobody.
func TestE2ETunctlMatchesC(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "tunctl")
	orig := testbed.Original(t, "tunctl")
	nsC, nsOurs := testbed.NetNS(t), testbed.NetNS(t)
	asNobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}

	cases := []struct {
		args   []string
		nobody bool
		dev    string // device whose sysfs attributes are compared after
	}{
		{args: nil, dev: "tap0"},
		{args: []string{"-b"}, dev: "tap1"},
		{args: []string{"-b", "-t", "ut0"}, dev: "ut0"},
		{args: []string{"-bt", "ut1"}, dev: "ut1"},
		{args: []string{"-tut2"}, dev: "ut2"},
		{args: []string{"-u", "nobody", "-t", "ut3"}, dev: "ut3"},
		{args: []string{"-u", "1234", "-g", "99", "-t", "ut4"}, dev: "ut4"},
		{args: []string{"-g", "nogroup", "-t", "ut5"}, dev: "ut5"},
		{args: []string{"-u", "0x10", "-g", "010", "-t", "ut6"}, dev: "ut6"},
		{args: []string{"-u", "3000000000", "-t", "ut7"}, dev: "ut7"},
		{args: []string{"-u", "-1", "-t", "ut8"}, dev: "ut8"},
		{args: []string{"-t", "pat%d"}, dev: "pat0"},
		{args: []string{"-b", "-t", "pat%d"}, dev: "pat1"},
		{args: []string{"-t", "-b"}, dev: "-b"},
		{args: []string{"-t", "ut3"}, dev: "ut3"}, // re-owning an existing tap
		// Errors.
		{args: []string{"-h"}},
		{args: []string{"-x", "-t", "ut9"}, dev: "ut9"},
		{args: []string{"-t"}},
		{args: []string{"-u"}},
		{args: []string{"--foo"}},
		{args: []string{"-:"}},
		{args: []string{"-t", "ut9", "extra"}, dev: "ut9"},
		{args: []string{"extra", "-x"}},
		{args: []string{"--", "-b"}},
		{args: []string{"-u", "nosuchuser", "-t", "ut9"}, dev: "ut9"},
		{args: []string{"-g", "nosuchgroup", "-t", "ut9"}, dev: "ut9"},
		{args: []string{"-u", "08", "-t", "ut9"}},
		{args: []string{"-f", "/nonexistent/tun", "-t", "ut9"}, dev: "ut9"},
		{args: []string{"-f", "/dev/null", "-t", "ut9"}, dev: "ut9"},
		{args: []string{"-t", "ut9"}, nobody: true, dev: "ut9"},
		{args: []string{"-t", "ut3"}, nobody: true, dev: "ut3"}, // owner may attach, not persist
		{args: []string{"-d", "ut3"}, nobody: true, dev: "ut3"},
		// Deleting.
		{args: []string{"-d", "ut0"}, dev: "ut0"},
		{args: []string{"-d", "ut1", "-b"}, dev: "ut1"},
		{args: []string{"-dut2"}, dev: "ut2"},
		{args: []string{"-d", "nosuch0"}, dev: "nosuch0"},
	}
	for _, c := range cases {
		var pre []string
		if c.nobody {
			pre = asNobody
		}
		want := inNS(t, nsC, append(append(append([]string{}, pre...), orig), c.args...)...)
		got := inNS(t, nsOurs, append(append(append([]string{}, pre...), ours), c.args...)...)
		// Both name themselves by argv[0]; our usage adds a paragraph.
		got.stderr = strings.ReplaceAll(got.stderr, ours, orig)
		if strings.Contains(want.stderr, "Create: ") {
			want.stderr += usageExtra
		}
		if got != want {
			t.Errorf("tunctl %q (nobody=%v):\n got %+v\nwant %+v", c.args, c.nobody, got, want)
		}
		if c.dev != "" {
			if a, b := sysAttrs(t, nsOurs, c.dev), sysAttrs(t, nsC, c.dev); a != b {
				t.Errorf("after tunctl %q: %s owner/group/tun_flags %q, the C tool's %q", c.args, c.dev, a, b)
			}
		}
	}
	// Persistent (IFF_PERSIST 0x800 with IFF_TAP|IFF_NO_PI), with the owner and
	// group asked for, after tunctl exited.
	if got := sysAttrs(t, nsOurs, "ut4"); got != "1234 99 0x1802" {
		t.Errorf("ut4: owner group tun_flags = %q, want \"1234 99 0x1802\"", got)
	}
	for _, gone := range []string{"ut0", "ut1", "ut2", "nosuch0", "ut9"} {
		if got := sysAttrs(t, nsOurs, gone); got != "" {
			t.Errorf("%s still exists (%s)", gone, got)
		}
	}
}

// Where ours refuses what the C tool does silently: a name longer than 15
// bytes (the C tool cuts it, so -d removes another device that shares the
// first 15 bytes). A message, status 1, nothing done.
func TestE2ETunctlRefusesWhatCGuesses(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "tunctl")
	orig := testbed.Original(t, "tunctl")
	ns := testbed.NetNS(t)
	if r := inNS(t, ns, ours, "-t", "averyveryveryve"); r.code != 0 {
		t.Fatalf("15-byte name: %+v", r)
	}
	long := "averyveryveryverylongname"
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-d", long}, "'" + long + "' is longer than 15 bytes"},
		{[]string{"-t", long}, "'" + long + "' is longer than 15 bytes"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := inNS(t, ns, append([]string{ours}, c.args...)...)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, c.msg) {
				t.Errorf("tunctl %q: %+v", c.args, r)
			}
		})
	}
	if got := sysAttrs(t, ns, "averyveryveryve"); got == "" {
		t.Errorf("-d %s removed averyveryveryve", long)
	}
	if r := inNS(t, ns, "ip", "-o", "link", "show"); strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("devices left behind:\n%s", r.stdout)
	}
	// What the C tool does with the same words, for the record.
	if r := inNS(t, ns, orig, "-d", long); r.code != 0 || sysAttrs(t, ns, "averyveryveryve") != "" {
		t.Errorf("the C tunctl no longer deletes the 15-byte prefix: %+v", r)
	}
}

// Our additions: -n makes a tun device, -d deletes it (the C tool, which
// always attaches as a tap, cannot), -l lists with owner and group.
func TestE2ETunctlTunAndList(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "tunctl")
	ns := testbed.NetNS(t)
	if r := inNS(t, ns, ours, "-n", "-u", "1234", "-t", "tn0"); r.code != 0 || r.stdout != "Set 'tn0' persistent and owned by uid 1234\n" {
		t.Fatalf("-n: %+v", r)
	}
	// IFF_TUN|IFF_NO_PI|IFF_PERSIST = 0x1|0x1000|0x800.
	if got := sysAttrs(t, ns, "tn0"); got != "1234 -1 0x1801" {
		t.Errorf("tn0: owner group tun_flags = %q", got)
	}
	inNS(t, ns, ours, "-g", "99", "-t", "tp0")
	r := inNS(t, ns, ours, "-l")
	want := "NAME  TYPE  PERSIST  OWNER  GROUP\n" +
		"tn0   tun   yes      1234   -\n" +
		"tp0   tap   yes      -      99\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("-l: %+v, want stdout\n%s", r, want)
	}
	if r := inNS(t, ns, ours, "-lb"); r.stdout != "tn0\ntp0\n" {
		t.Errorf("-lb: %+v", r)
	}
	if r := inNS(t, ns, testbed.Original(t, "tunctl"), "-d", "tn0"); r.code == 0 {
		t.Errorf("the C tunctl deleted a tun device; the comment on deleteDevice is wrong: %+v", r)
	}
	if r := inNS(t, ns, ours, "-d", "tn0"); r.code != 0 || r.stdout != "Set 'tn0' nonpersistent\n" {
		t.Errorf("-d tn0: %+v", r)
	}
	if got := sysAttrs(t, ns, "tn0"); got != "" {
		t.Errorf("tn0 still exists: %s", got)
	}
}

// A UML 6.1 guest's tuntap transport uses a tap our tunctl made: the
// namespace pings the guest through it; -d while the guest holds the tap
// fails as the C tool's does (the queue is busy); the tap outlives the guest
// (persistent) and -d then removes it.
func TestE2ETunctlTapServesGuest(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "tunctl")
	orig := testbed.Original(t, "tunctl")
	ns := testbed.NetNS(t)
	if r := inNS(t, ns, ours, "-u", "nobody", "-t", "umltap0"); r.code != 0 {
		t.Fatalf("tunctl: %+v", r)
	}
	g := b.Boot(t, testbed.GuestConfig{
		Args:   []string{"eth0=tuntap,umltap0"},
		Prefix: []string{"ip", "netns", "exec", ns},
		Script: `ip addr add 10.78.0.2/24 dev eth0 && ip link set eth0 up && echo GUEST-UP
sleep 40`,
	})
	g.WaitFor("GUEST-UP", 30*time.Second)
	for _, argv := range [][]string{
		{"ip", "addr", "add", "10.78.0.1/24", "dev", "umltap0"},
		{"ip", "link", "set", "umltap0", "up"},
		{"ping", "-c", "2", "-i", "0.2", "-W", "5", "10.78.0.2"},
	} {
		if r := inNS(t, ns, argv...); r.code != 0 {
			t.Fatalf("%v: %+v", argv, r)
		}
	}
	busy := result{stderr: "TUNSETIFF: Device or resource busy\n", code: 1}
	for _, tool := range []string{orig, ours} {
		if r := inNS(t, ns, tool, "-d", "umltap0"); r != busy {
			t.Errorf("%s -d on the guest's tap: %+v, want %+v", tool, r, busy)
		}
	}
	g.Kill()
	// IFF_TAP|IFF_NO_PI|IFF_PERSIST, still owned by nobody.
	if got := sysAttrs(t, ns, "umltap0"); got != "65534 -1 0x1802" {
		t.Errorf("after the guest exited: %q", got)
	}
	if r := inNS(t, ns, ours, "-d", "umltap0"); r.code != 0 || r.stdout != "Set 'umltap0' nonpersistent\n" {
		t.Fatalf("tunctl -d: %+v", r)
	}
	if got := sysAttrs(t, ns, "umltap0"); got != "" {
		t.Errorf("umltap0 still exists after -d: %q", got)
	}
}
