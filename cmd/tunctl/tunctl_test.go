package main

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestGetoptLikeGlibc(t *testing.T) {
	for _, c := range []struct {
		args     []string
		posix    bool
		opts     []option
		operands []string
		err      string
	}{
		{args: []string{"-b", "-t", "tap0"}, opts: []option{{'b', ""}, {'t', "tap0"}}},
		{args: []string{"-bt", "tap0"}, opts: []option{{'b', ""}, {'t', "tap0"}}},
		{args: []string{"-ttap0"}, opts: []option{{'t', "tap0"}}},
		{args: []string{"-btap0"}, opts: []option{{'b', ""}, {'t', "ap0"}}},
		{args: []string{"-bxt", "tap0"}, opts: []option{{'b', ""}}, err: "invalid option -- 'x'"},
		{args: []string{"-t", "-b"}, opts: []option{{'t', "-b"}}},
		{args: []string{"-t"}, err: "option requires an argument -- 't'"},
		{args: []string{"-bu"}, opts: []option{{'b', ""}}, err: "option requires an argument -- 'u'"},
		{args: []string{"--", "-b"}, operands: []string{"-b"}},
		{args: []string{"x", "-b", "y"}, opts: []option{{'b', ""}}, operands: []string{"x", "y"}},
		{args: []string{"x", "-b"}, posix: true, operands: []string{"x", "-b"}},
		{args: []string{"-", "-b"}, opts: []option{{'b', ""}}, operands: []string{"-"}},
		{args: []string{"--foo"}, err: "invalid option -- '-'"},
		{args: []string{"-:"}, err: "invalid option -- ':'"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			opts, operands, err := getopt(c.args, optstring, c.posix)
			if !reflect.DeepEqual(opts, c.opts) && !(len(opts) == 0 && len(c.opts) == 0) ||
				!reflect.DeepEqual(operands, c.operands) || err != c.err {
				t.Errorf("getopt(%q) = %v %q %q, want %v %q %q", c.args, opts, operands, err, c.opts, c.operands, c.err)
			}
		})
	}
}

func TestStrtolLikeC(t *testing.T) {
	for _, c := range []struct {
		in string
		v  int64
		ok bool
	}{
		{"", 0, true}, {"0", 0, true}, {"1234", 1234, true}, {"0x10", 16, true},
		{"0X1f", 31, true}, {"010", 8, true}, {"08", 0, false}, {"0x", 0, false},
		{" 12", 12, true}, {"\t+7", 7, true}, {"-1", -1, true}, {"12 ", 0, false},
		{" ", 0, false}, {"-", 0, false}, {"abc", 0, false},
		{"99999999999999999999", math.MaxInt64, true},
		{"-99999999999999999999", math.MinInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", math.MaxInt64, true},
	} {
		t.Run(fmt.Sprintf("%q", c.in), func(t *testing.T) {
			v, ok := strtol(c.in)
			if v != c.v || ok != c.ok {
				t.Errorf("strtol(%q) = %d, %v; want %d, %v", c.in, v, ok, c.v, c.ok)
			}
		})
	}
}

func FuzzStrtol(f *testing.F) {
	for _, s := range []string{"", "0x1f", "-010", " +9", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := strtol(s)
		if !ok && v != 0 {
			t.Fatalf("rejected %q with value %d", s, v)
		}
	})
}

func FuzzGetopt(f *testing.F) {
	f.Add("-bt\x00tap0\x00-u\x001000")
	f.Add("--\x00-b")
	f.Add("-ttap0\x00x\x00-g")
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		opts, operands, _ := getopt(args, optstring, false)
		if len(opts)+len(operands) > 2*len(joined)+1 {
			t.Fatalf("more results than input: %v %v", opts, operands)
		}
	})
}

// Argument errors are reported before any device is touched, so they run
// without privileges or a namespace. Expected texts are the C tunctl's.
// A name that does not fit IFNAMSIZ is refused before anything is opened
// (the C tool cuts it and acts on another name).
func TestRunNameTooLong(t *testing.T) {
	for _, args := range [][]string{{"-t", "0123456789abcdef"}, {"-d", "0123456789abcdefghij"}, {"-b", "-t", "averyveryveryverylong%d"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"tunctl", "-f", "/nonexistent/clone"}, args...), nil, &out, &errb)
			if code != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "is longer than 15 bytes, the longest interface name; nothing done\n") {
				t.Errorf("tunctl %q: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
			}
		})
	}
}

func TestRunArgumentErrors(t *testing.T) {
	const usageText = "Create: tunctl [-b] [-u owner] [-g group] [-t device-name] [-f tun-clone-device]\n" +
		"Delete: tunctl -d device-name [-f tun-clone-device]\n\n" +
		"The default tun clone device is /dev/net/tun - some systems use\n/dev/misc/net/tun instead\n\n" +
		"-b will result in brief output (just the device name)\n" + usageExtra
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"-h"}, "tunctl: invalid option -- 'h'\n"},
		{[]string{"-t"}, "tunctl: option requires an argument -- 't'\n"},
		{[]string{"-t", "tap0", "extra"}, ""},
		{[]string{"-u", "no such user", "-t", "x"}, "'no such user' is neither a username nor a numeric uid.\n"},
		{[]string{"-g", "no such group"}, "'no such group' is neither a groupname nor a numeric group.\n"},
		{[]string{"-u", "nouser", "-x"}, "'nouser' is neither a username nor a numeric uid.\n"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"tunctl"}, c.args...), nil, &out, &errb)
			if code != 1 || out.Len() != 0 || errb.String() != c.err+usageText {
				t.Errorf("tunctl %q: exit %d, stdout %q, stderr\n%s", c.args, code, out.String(), errb.String())
			}
		})
	}
}
