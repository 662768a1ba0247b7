package lab

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// FuzzParseConf: no input may panic; what parses is well formed.
func FuzzParseConf(f *testing.F) {
	f.Add("pc1[0]=A\npc1[mem]=64\n")
	f.Add("LAB_NAME=\"x # y\"\nr1[1]=\"B/02:42:ac:11:00:02\" # c\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseConf("lab.conf", strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.File != "lab.conf" {
				t.Fatalf("error %v is not a ParseError with a line", err)
			}
			return
		}
		last := 0
		for _, e := range c.Entries {
			if checkName(e.Machine) != "" || e.Arg == "" || e.Line <= last {
				t.Fatalf("bad entry %+v", e)
			}
			last = e.Line
		}
		c.DetectFormat()
	})
}

// FuzzParseDep: no input may panic; targets and prerequisites are valid
// names.
func FuzzParseDep(f *testing.F) {
	f.Add("pc2: router pc1\n")
	f.Add("# c\na b: \\\n c\n")
	f.Fuzz(func(t *testing.T, in string) {
		deps, err := ParseDep("lab.dep", strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error %v is not a ParseError with a line", err)
			}
			return
		}
		for tg, ps := range deps {
			if checkName(tg) != "" {
				t.Fatalf("bad target %q", tg)
			}
			for _, p := range ps {
				if checkName(p) != "" {
					t.Fatalf("bad prerequisite %q", p)
				}
			}
		}
	})
}

// FuzzLoad: a lab.conf and lab.dep pair either loads into a consistent Lab
// or fails with a ParseError; Waves never panics.
func FuzzLoad(f *testing.F) {
	f.Add("a[0]=X\nb[0]=X\n", "b: a\n")
	f.Add("LAB_MACHINES=a,b\na[0]=X\n", "")
	f.Fuzz(func(t *testing.T, conf, dep string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ConfFile), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if dep != "" {
			if err := os.WriteFile(filepath.Join(dir, DepFile), []byte(dep), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		l, err := Load(dir)
		if err != nil {
			var pe *ParseError
			if l != nil || !errors.As(err, &pe) {
				t.Fatalf("Load: %v, %v; want nil and a ParseError", l, err)
			}
			return
		}
		ifaces := 0
		for _, m := range l.Machines {
			if checkName(m.Name) != "" {
				t.Fatalf("bad machine name %q", m.Name)
			}
			for i, ifc := range m.Interfaces {
				if len(ifc.MAC) != 6 || ifc.MAC[0]&1 != 0 {
					t.Fatalf("%s eth%d: MAC %v", m.Name, ifc.Index, ifc.MAC)
				}
				if i > 0 && m.Interfaces[i-1].Index >= ifc.Index {
					t.Fatalf("%s: interfaces not sorted and unique", m.Name)
				}
				if checkName(ifc.Domain) != "" {
					t.Fatalf("bad domain %q", ifc.Domain)
				}
				ifaces++
			}
		}
		members := 0
		if !sort.SliceIsSorted(l.Domains, func(i, j int) bool { return l.Domains[i].Name < l.Domains[j].Name }) {
			t.Fatal("domains not sorted")
		}
		for _, d := range l.Domains {
			members += len(d.Members)
		}
		if members != ifaces {
			t.Fatalf("%d domain members for %d interfaces", members, ifaces)
		}
		waves, err := l.Waves(nil)
		if err != nil {
			var ce *CycleError
			if !errors.As(err, &ce) || len(ce.Cycle) < 2 {
				t.Fatalf("Waves: %v", err)
			}
			return
		}
		n := 0
		for _, w := range waves {
			n += len(w)
		}
		if n != len(l.Machines) {
			t.Fatalf("waves hold %d machines of %d", n, len(l.Machines))
		}
	})
}
