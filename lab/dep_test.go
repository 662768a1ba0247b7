package lab

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseDep(t *testing.T) {
	cases := []struct {
		name, in string
		want     map[string][]string
	}{
		{"simple", "pc2: router pc1\n", map[string][]string{"pc2": {"router", "pc1"}}},
		{"no space", "pc2:router\n", map[string][]string{"pc2": {"router"}}},
		{"no prerequisites", "pc2:\n", map[string][]string{"pc2": {}}},
		{"comments and blanks", "# order\n\n  \npc2: r1 # after r1\n#pc3: r1\n", map[string][]string{"pc2": {"r1"}}},
		{"continuation", "pc2: r1 \\\n  r2\\\nr3\n", map[string][]string{"pc2": {"r1", "r2", "r3"}}},
		{"continued comment", "# a comment \\\npc9: x\npc2: r1\n", map[string][]string{"pc2": {"r1"}}},
		{"continuation at eof", "pc2: r1 \\", map[string][]string{"pc2": {"r1"}}},
		{"several targets", "a b: c\n", map[string][]string{"a": {"c"}, "b": {"c"}}},
		{"rules add up", "a: b\na: c b\n", map[string][]string{"a": {"b", "c"}}},
		{"crlf", "a: b\r\n", map[string][]string{"a": {"b"}}},
		{"leading space", "  a: b\n", map[string][]string{"a": {"b"}}},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseDep("lab.dep", strings.NewReader(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("ParseDep(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestParseDepErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"no colon", "a b\n", "lab.dep:1: missing ':'"},
		{"no target", ": b\n", "lab.dep:1: no target"},
		{"double colon", "a:: b\n", "not a plain rule"},
		{"assignment", "A := b\n", "not a plain rule"},
		{"variable", "A = b:c\n", "not a plain rule"},
		{"recipe", "a: b\n\techo hi\n", "lab.dep:2: recipe lines"},
		{"bad name", "a: b/c\n", `lab.dep:1: invalid machine name "b/c"`},
		{"line of continued rule", "a: b\nc \\\n d\n", "lab.dep:2: missing ':'"},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDep("lab.dep", strings.NewReader(c.in))
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseDep(%q) = %v, want ParseError containing %q", c.in, err, c.want)
			}
		})
	}
}

func TestWaves(t *testing.T) {
	conf := "r1[0]=A\nr2[0]=A\npc1[0]=A\npc2[0]=A\nsrv[0]=A\n"
	cases := []struct {
		name, dep string
		sel       []string
		want      string // waves separated by " | "
		err       string
	}{
		{"no deps", "", nil, "r1 r2 pc1 pc2 srv", ""},
		{"chain", "pc1: r1\nr1: r2\n", nil, "r2 pc2 srv | r1 | pc1", ""},
		{"fan in", "srv: pc1 pc2\npc1 pc2: r1\n", nil, "r1 r2 | pc1 pc2 | srv", ""},
		{"selection drops outside deps", "pc1: r1\n", []string{"pc1", "pc2"}, "pc1 pc2", ""},
		{"selection order kept", "", []string{"srv", "r1"}, "srv r1", ""},
		{"unknown dep name ignored", "pc1: ghost\n", nil, "r1 r2 pc1 pc2 srv", ""},
		{"cycle", "r1: r2\nr2: pc1\npc1: r1\n", nil, "", "lab.dep:1: dependency cycle: r1 -> r2 -> pc1 -> r1"},
		{"self cycle", "srv: srv\n", nil, "", "dependency cycle: srv -> srv"},
		{"cycle outside selection", "r1: r2\nr2: r1\n", []string{"pc1", "r1"}, "pc1 r1", ""},
		{"unknown machine", "", []string{"nope"}, "", `no machine "nope"`},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			l, err := loadConf(t, conf, c.dep)
			if err != nil {
				t.Fatal(err)
			}
			waves, err := l.Waves(c.sel)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Waves = %v, %v; want error containing %q", waves, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ws []string
			for _, w := range waves {
				ws = append(ws, strings.Join(w, " "))
			}
			if got := strings.Join(ws, " | "); got != c.want {
				t.Fatalf("Waves = %q, want %q", got, c.want)
			}
		})
	}
}

func TestCycleError(t *testing.T) {
	l := mustLoad(t, "cycle")
	_, err := l.Waves(nil)
	var ce *CycleError
	if !errors.As(err, &ce) || ce.File != DepFile || len(ce.Cycle) != 4 {
		t.Fatalf("err %v, want a CycleError over a, b, c", err)
	}
	if got := err.Error(); got != "lab.dep:1: dependency cycle: a -> b -> c -> a" {
		t.Errorf("message %q", got)
	}
	found := false
	for _, w := range l.Warnings {
		found = found || strings.Contains(w.String(), "lab.dep:1: dependency cycle")
	}
	if !found {
		t.Errorf("Load did not warn about the cycle: %v", l.Warnings)
	}
}

func TestDepUnknownMachineWarning(t *testing.T) {
	l, err := loadConf(t, "a[0]=X\n", "a: ghost\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Warnings) != 1 || l.Warnings[0].String() != "lab.dep:1: ghost: not a machine of this lab; ignored" {
		t.Fatalf("warnings %v", l.Warnings)
	}
}
