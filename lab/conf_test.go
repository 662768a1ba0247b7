package lab

import (
	"errors"
	"strings"
	"testing"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestParseValue(t *testing.T) {
	cases := []struct {
		name, in, val string
		quote         byte
		comment       bool
		err           string
	}{
		{name: "plain", in: "A", val: "A"},
		{name: "empty", in: "", val: ""},
		{name: "double", in: `"kathara/frr"`, val: "kathara/frr", quote: '"'},
		{name: "single", in: `'a b'`, val: "a b", quote: '\''},
		{name: "hash in quotes", in: `"echo a # b"`, val: "echo a # b", quote: '"'},
		{name: "comment after quotes", in: `"A"   # eth0`, val: "A", quote: '"', comment: true},
		{name: "comment after plain", in: "A # eth0", val: "A", comment: true},
		{name: "tab comment", in: "A\t#x", val: "A", comment: true},
		{name: "hash inside word", in: "a#b", val: "a#b"},
		{name: "leading hash", in: "#x", val: "#x"},
		{name: "other quote inside", in: `"it's"`, val: "it's", quote: '"'},
		{name: "quote later is literal", in: `a"b`, val: `a"b`},
		{name: "unterminated", in: `"abc`, err: "unterminated"},
		{name: "junk after quote", in: `"a"b`, err: "after the closing"},
		{name: "hash glued to quote", in: `"a"#c`, err: "after the closing"},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			val, q, comment, msg := parseValue(c.in)
			if c.err != "" {
				if !contains(msg, c.err) {
					t.Fatalf("parseValue(%q): msg %q, want %q", c.in, msg, c.err)
				}
				return
			}
			if msg != "" || val != c.val || q != c.quote || comment != c.comment {
				t.Fatalf("parseValue(%q) = %q %q %v %q; want %q %q %v", c.in, val, q, comment, msg, c.val, c.quote, c.comment)
			}
		})
	}
}

func TestParseConf(t *testing.T) {
	in := strings.Join([]string{
		"# comment",
		"",
		`LAB_DESCRIPTION="a lab"`,
		"  pc1[0]=A  ",
		`pc1[image]="kathara/base" # why`,
		"pc1 [1]=B",
		"garbage",
		"machines=pc1\r",
	}, "\n")
	c, err := ParseConf("x/lab.conf", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Machine: "pc1", Arg: "0", Value: "A", Line: 4},
		{Machine: "pc1", Arg: "image", Value: "kathara/base", Quote: '"', Comment: true, Line: 5},
	}
	if len(c.Entries) != len(want) {
		t.Fatalf("entries %+v, want %+v", c.Entries, want)
	}
	for i := range want {
		if c.Entries[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, c.Entries[i], want[i])
		}
	}
	wantVars := []Var{{Name: "LAB_DESCRIPTION", Value: "a lab", Quote: '"', Line: 3}, {Name: "machines", Value: "pc1", Line: 8}}
	if len(c.Vars) != 2 || c.Vars[0] != wantVars[0] || c.Vars[1] != wantVars[1] {
		t.Errorf("vars %+v, want %+v", c.Vars, wantVars)
	}
	if len(c.Warnings) != 2 || c.Warnings[0].Line != 6 || c.Warnings[1].Line != 7 {
		t.Fatalf("warnings %v, want lines 6 and 7", c.Warnings)
	}
	if got := c.Warnings[0].String(); !strings.HasPrefix(got, "x/lab.conf:6: line ignored") {
		t.Errorf("warning text %q", got)
	}
}

func TestParseConfErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"no closing bracket", "pc1[0=A", "lab.conf:1: pc1[: missing ']'"},
		{"no equals", "pc1[0]A", "lab.conf:1: pc1[0]: expected '=' right after ']'"},
		{"space before equals", "pc1[0] =A", "expected '='"},
		{"empty arg", "pc1[]=A", "empty interface number or option name"},
		{"bad arg", "pc1[1a]=A", "neither an interface number nor an option name"},
		{"negative arg", "pc1[-1]=A", "neither an interface number"},
		{"slash in name", "a/b[0]=A", `invalid machine name "a/b"`},
		{"comma in name", "a,b[0]=A", `invalid machine name "a,b"`},
		{"colon in name", "a:b[0]=A", `invalid machine name "a:b"`},
		{"dotdot", "a..b[0]=A", `contains ".."`},
		{"leading dash", "-x[0]=A", "starts with '-'"},
		{"too long", strings.Repeat("a", 64) + "[0]=A", "longer than 63"},
		{"unicode name", "pé[0]=A", "not allowed"},
		{"unterminated quote", `pc1[image]="x`, "lab.conf:1: pc1[image]: unterminated \" quote"},
		{"bad var quote", `LAB_NAME='x`, "LAB_NAME: unterminated"},
		{"not utf8", "pc1[0]=\xff", "not valid UTF-8"},
		{"second line", "pc1[0]=A\npc1[1", "lab.conf:2:"},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConf("lab.conf", strings.NewReader(c.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseConf(%q) = %v, want *ParseError", c.in, err)
			}
			if !contains(err.Error(), c.want) {
				t.Fatalf("ParseConf(%q) = %q, want it to contain %q", c.in, err, c.want)
			}
		})
	}
}

func TestParseConfLongLine(t *testing.T) {
	in := "pc1[0]=A\n" + strings.Repeat("x", maxLineLen+1) + "\n"
	_, err := ParseConf("lab.conf", strings.NewReader(in))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Fatalf("got %v, want a ParseError on line 2", err)
	}
}
