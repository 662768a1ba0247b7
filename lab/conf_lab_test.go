package lab

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from Load's results")

// TestLoadFixtures loads every good fixture lab and compares all Load found
// with testdata/golden/NAME.txt (go test -run TestLoadFixtures -update
// rewrites them; review the diff).
func TestLoadFixtures(t *testing.T) {
	for _, name := range []string{"netkit", "netkit-dirs", "netkit-jh", "kathara", "conflict", "cycle"} {
		name := name
		t.Run(name, func(t *testing.T) {
			l, err := Load(filepath.Join("testdata", "labs", name))
			if err != nil {
				t.Fatal(err)
			}
			if !filepath.IsAbs(l.Dir) {
				t.Errorf("Dir %q is not absolute", l.Dir)
			}
			got := summary(l)
			golden := filepath.Join("testdata", "golden", name+".txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("Load(%s) differs from %s:\n--- got\n%s--- want\n%s", name, golden, got, want)
			}
		})
	}
}

// Spot checks of the fixtures, stated directly.
func TestLoadFixtureFacts(t *testing.T) {
	t.Run("netkit", func(t *testing.T) {
		l := mustLoad(t, "netkit")
		if l.Format != FormatNetkit || !strings.Contains(l.FormatReason, "lab.conf:7: machines=") {
			t.Errorf("format %s (%s)", l.Format, l.FormatReason)
		}
		r1 := l.Machine("r1")
		if r1 == nil || len(r1.Interfaces) != 3 {
			t.Fatalf("r1 = %+v", r1)
		}
		tap := r1.Interfaces[2]
		if tap.Domain != "tap" || tap.Tap == nil || tap.Tap.HostAddr != "10.0.0.1" || tap.Tap.GuestAddr != "10.0.0.2" {
			t.Errorf("tap interface %+v", tap)
		}
		if r1.Interfaces[0].MAC.String() != MACFor(FormatNetkit, "r1", 0).String() {
			t.Errorf("r1 eth0 MAC %s", r1.Interfaces[0].MAC)
		}
		if r1.Image != "/opt/netkit/fs/netkit-fs" {
			t.Errorf("model-fs not taken as image: %q", r1.Image)
		}
		if l.Meta["LAB_DESCRIPTION"] != "Two hosts and a router" {
			t.Errorf("meta %v", l.Meta)
		}
	})
	t.Run("kathara", func(t *testing.T) {
		l := mustLoad(t, "kathara")
		r1 := l.Machine("r1")
		if r1.Interfaces[1].MAC.String() != "02:42:ac:11:00:02" {
			t.Errorf("explicit MAC lost: %s", r1.Interfaces[1].MAC)
		}
		if r1.Interfaces[0].MAC.String() != "9e:b6:3a:91:47:e7" {
			t.Errorf("derived MAC %s", r1.Interfaces[0].MAC)
		}
		if l.Machine("notamachine") != nil || l.Machine("assets") != nil {
			t.Errorf("Kathará lab took a machine from the directory: %v", names(l.Machines))
		}
		if got := l.Machine("r2").Mem; got != 1024 {
			t.Errorf("r2 mem=1G -> %d MiB", got)
		}
	})
	t.Run("netkit-dirs", func(t *testing.T) {
		l := mustLoad(t, "netkit-dirs")
		if got := strings.Join(names(l.Machines), " "); got != "pc1 r1 solo zz" {
			t.Errorf("machines %q, want lab.conf order then directory/startup machines sorted", got)
		}
	})
}

func mustLoad(t *testing.T, name string) *Lab {
	t.Helper()
	l, err := Load(filepath.Join("testdata", "labs", name))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func names(ms []*Machine) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestLoadBadFixtures(t *testing.T) {
	cases := []struct{ name, want string }{
		{"bad-gap-kathara", "lab.conf:3: pc1[2]: interface 1 of pc1 is missing"},
		{"bad-mac", `lab.conf:2: pc1[1]: bad MAC address "02:42:zz:00:00:01"`},
		{"bad-dep", "lab.dep:2: missing ':'"},
		{"bad-name", `lab.conf:2: invalid machine name "../etc"`},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			l, err := Load(filepath.Join("testdata", "labs", c.name))
			var pe *ParseError
			if l != nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load = %v, %v; want no lab and a ParseError containing %q", l, err, c.want)
			}
		})
	}
	t.Run("notalab", func(t *testing.T) {
		_, err := Load(filepath.Join("testdata", "labs", "notalab"))
		if !errors.Is(err, ErrNotLab) {
			t.Fatalf("err %v, want ErrNotLab", err)
		}
		l, err := LoadWith(filepath.Join("testdata", "labs", "notalab"), LoadOptions{Force: true})
		if err != nil || len(l.Machines) != 0 {
			t.Fatalf("forced: %v, %v", l, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := Load(filepath.Join("testdata", "labs", "does-not-exist")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err %v, want ErrNotExist", err)
		}
	})
}

// loadConf writes conf (and dep, if not empty) into a fresh lab directory
// and loads it.
func loadConf(t *testing.T, conf, dep string, files ...string) (*Lab, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfFile), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if dep != "" {
		if err := os.WriteFile(filepath.Join(dir, DepFile), []byte(dep), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, f)
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Load(dir)
}

func TestLoadErrors(t *testing.T) {
	cases := []struct{ name, conf, want string }{
		{"duplicate interface", "pc1[0]=A\npc1[0]=B\n", "lab.conf:2: pc1[0]: interface 0 of pc1 already defined on line 1"},
		{"leading zero", "pc1[01]=A\n", "lab.conf:1: pc1[01]: interface number with a leading zero"},
		{"huge interface", "pc1[256]=A\n", "interface number above 255"},
		{"huge interface overflow", "pc1[99999999999999999999]=A\n", "interface number above 255"},
		{"empty domain", "pc1[0]=\n", "empty collision domain"},
		{"bad domain", "pc1[0]=a:b\n", `invalid collision domain name "a:b"`},
		{"domain dotdot", "pc1[0]=..\n", "invalid collision domain"},
		{"kathara domain", "LAB_NAME=x\npc1[0]=a-b\n", "Kathará allows letters"},
		{"kathara name", "LAB_NAME=x\nPC1[0]=A\n", "Kathará machine names"},
		{"kathara two on one domain", "LAB_NAME=x\npc1[0]=A\npc1[1]=A\n", "one interface per domain"},
		{"jh name", "LAB_MACHINES=pc_1\npc_1[0]=A\n", "Netkit-JH machine names"},
		{"reserved", "shared[0]=A\n", "reserved"},
		{"bad mac", "pc1[0]=A/01:00:5e:00:00:01\n", "multicast"},
		{"mac three parts", "pc1[0]=A/02:00:00:00:00:01/x\n", "want DOMAIN/MAC"},
		{"mac no domain", "pc1[0]=/02:00:00:00:00:01\n", "want DOMAIN/MAC"},
		{"tap two parts", "pc1[0]=tap,10.0.0.1\n", "want DOMAIN,TAP_ADDR,GUEST_ADDR"},
		{"tap bad addr", "pc1[0]=tap,10.0.0.1,host\n", `"host" is not an IPv4 address`},
		{"tap ipv6", "pc1[0]=tap,10.0.0.1,::1\n", "not an IPv4 address"},
		{"tap empty domain", "pc1[0]=,10.0.0.1,10.0.0.2\n", "empty collision domain"},
		{"bad sysctl no equals", "pc1[sysctl]=net.ipv4.ip_forward\n", "lab.conf:1: pc1[sysctl]: sysctl"},
		{"bad sysctl key", "pc1[sysctl]=forward=1\n", "dotted key"},
		{"bad sysctl two equals", "pc1[sysctl]=net.a=b=c\n", "sysctl"},
		{"bad sysctl space in key", "pc1[sysctl]=net.a.b =1\n", "sysctl"},
		{"bad env", "pc1[env]=NOEQUALS\n", "env"},
		{"bad mem", "pc1[mem]=lots\n", "memory size"},
		{"mem zero", "pc1[mem]=0\n", "less than 1 MiB"},
		{"mem bytes too small", "pc1[mem]=1000b\n", "less than 1 MiB"},
		{"mem negative", "pc1[mem]=-5\n", "memory size"},
		{"bad cpus", "pc1[cpus]=many\n", "cpus"},
		{"cpus zero", "pc1[cpus]=0\n", "cpus"},
		{"cpus nan", "pc1[cpus]=NaN\n", "cpus"},
		{"empty image", "pc1[image]=\n", "empty image"},
		{"empty append", "pc1[append]= \n", "empty kernel parameter"},
		{"bad list name", "machines=\"a b/c\"\n", `machines: invalid machine name "b/c"`},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			l, err := loadConf(t, c.conf, "")
			var pe *ParseError
			if l != nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load(%q) = %v, %v; want no lab and a ParseError containing %q", c.conf, l, err, c.want)
			}
			if pe.File != ConfFile {
				t.Errorf("error file %q, want %q", pe.File, ConfFile)
			}
		})
	}
}

func TestLoadOptions(t *testing.T) {
	cases := []struct {
		name, conf string
		check      func(t *testing.T, m *Machine)
		warn       string // a warning containing this, or "" for none
	}{
		{"mem MB", "pc1[mem]=128\n", func(t *testing.T, m *Machine) { eq(t, m.Mem, 128) }, ""},
		{"mem m", "pc1[mem]=128m\n", func(t *testing.T, m *Machine) { eq(t, m.Mem, 128) }, ""},
		{"mem M", "pc1[mem]=128M\n", func(t *testing.T, m *Machine) { eq(t, m.Mem, 128) }, ""},
		{"mem g", "pc1[mem]=2g\n", func(t *testing.T, m *Machine) { eq(t, m.Mem, 2048) }, ""},
		{"mem k", "pc1[mem]=131072k\n", func(t *testing.T, m *Machine) { eq(t, m.Mem, 128) }, ""},
		{"mem b", "pc1[mem]=134217728b\n", func(t *testing.T, m *Machine) { eq(t, m.Mem, 128) }, ""},
		{"mem twice", "pc1[mem]=64\npc1[mem]=96\n", func(t *testing.T, m *Machine) { eq(t, m.Mem, 96) }, "lab.conf:2: pc1[mem]: given again (first on line 1)"},
		{"cpus", "pc1[cpus]=2\n", func(t *testing.T, m *Machine) { eq(t, m.CPUs, 2) }, ""},
		{"cpus fraction", "pc1[cpus]=1.5\n", func(t *testing.T, m *Machine) { eq(t, m.CPUs, 2) }, "lab.conf:1: pc1[cpus]: a UML guest has whole CPUs"},
		{"exec repeat", "pc1[exec]=a\npc1[exec]=b\n", func(t *testing.T, m *Machine) { eq(t, strings.Join(m.Exec, "|"), "a|b") }, ""},
		{"sysctl", "pc1[sysctl]=net.ipv4.conf.all.rp_filter= 0\n", func(t *testing.T, m *Machine) {
			eq(t, strings.Join(m.Sysctl, "|"), "net.ipv4.conf.all.rp_filter=0")
		}, ""},
		{"sysctl kernel", "pc1[sysctl]=kernel.panic=1\n", func(t *testing.T, m *Machine) { eq(t, m.Sysctl[0], "kernel.panic=1") }, ""},
		{"env", "pc1[env]=A=b=c\n", func(t *testing.T, m *Machine) { eq(t, m.Env[0], "A=b=c") }, ""},
		{"append", "pc1[append]=a=1 b\npc1[append]=c\n", func(t *testing.T, m *Machine) { eq(t, strings.Join(m.Append, "|"), "a=1|b|c") }, ""},
		{"kernel", "pc1[kernel]=/k\n", func(t *testing.T, m *Machine) { eq(t, m.Kernel, "/k") }, ""},
		{"image", "pc1[image]=kathara/frr\n", func(t *testing.T, m *Machine) { eq(t, m.Image, "kathara/frr") }, ""},
		{"model-fs", "pc1[model-fs]=/fs.img\n", func(t *testing.T, m *Machine) { eq(t, m.Image, "/fs.img") }, ""},
		{"filesystem is not the image", "pc1[filesystem]=/x.disk\n", func(t *testing.T, m *Machine) { eq(t, m.Image, "") }, "pc1[filesystem]: not supported"},
		{"unknown", "pc1[frobnicate]=1\n", func(t *testing.T, m *Machine) { eq(t, len(m.Options), 1) }, "lab.conf:1: pc1[frobnicate]: unknown option, ignored"},
		{"bridged", "pc1[bridged]=true\n", nil, "lab.conf:1: pc1[bridged]: not supported"},
		{"port", "pc1[port]=8080:80\n", nil, "pc1[port]: not supported"},
		{"ipv6", "pc1[ipv6]=true\n", nil, ""},
		{"shell", "pc1[shell]=/bin/sh\n", nil, "pc1[shell]: not supported"},
		{"num_terms", "pc1[num_terms]=2\n", nil, "pc1[num_terms]: not supported"},
		{"ulimit", "pc1[ulimit]=nofile=1024\n", nil, "pc1[ulimit]: not supported"},
		{"con0", "pc1[con0]=none\n", nil, "pc1[con0]: not supported"},
		{"mount", "pc1[mount]=/a,/b\n", nil, "pc1[mount]: not supported"},
		{"raw options in order", "pc1[mem]=64\npc1[0]=A\npc1[zz]=1\npc1[exec]=x\n", func(t *testing.T, m *Machine) {
			var got []string
			for _, o := range m.Options {
				got = append(got, o.Name+"="+o.Value)
			}
			eq(t, strings.Join(got, " "), "mem=64 zz=1 exec=x")
			eq(t, m.Options[1].Line, 3)
		}, "pc1[zz]: unknown option"},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			l, err := loadConf(t, c.conf, "")
			if err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				c.check(t, l.Machine("pc1"))
			}
			var ws []string
			for _, w := range l.Warnings {
				ws = append(ws, w.String())
			}
			all := strings.Join(ws, "\n")
			if c.warn == "" && len(ws) > 0 {
				t.Errorf("unexpected warnings:\n%s", all)
			}
			if c.warn != "" && !strings.Contains(all, c.warn) {
				t.Errorf("warnings:\n%s\nwant one containing %q", all, c.warn)
			}
		})
	}
}

func eq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestRegisterOption(t *testing.T) {
	RegisterOption(OptionSpec{Name: "ssl#"})
	defer func() {
		optMu.Lock()
		delete(optTable, "ssl#")
		optMu.Unlock()
	}()
	l, err := loadConf(t, "one[ssl1]=cable1\none[ssl]=x\n", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Warnings) != 1 || !strings.Contains(l.Warnings[0].String(), "one[ssl]: unknown option") {
		t.Fatalf("warnings %v: want only [ssl] (no number) unknown", l.Warnings)
	}
	if o := l.Machine("one").Options[0]; o.Name != "ssl1" || o.Value != "cable1" || o.Line != 1 {
		t.Fatalf("option %+v", o)
	}
	if _, ok := LookupOption("ssl12"); !ok {
		t.Error("ssl12 not found through ssl#")
	}
	found := false
	for _, n := range KnownOptions() {
		found = found || n == "ssl#"
	}
	if !found {
		t.Error("KnownOptions misses ssl#")
	}
}

func TestMachineList(t *testing.T) {
	cases := []struct {
		name, conf string
		files      []string
		want       string
		warn       string
	}{
		{"conf order", "b[0]=A\na[0]=A\nb[1]=B\n", nil, "b a", ""},
		{"dirs and startups after", "b[0]=A\n", []string{"z/", "c.startup", "b/", "shared/", "shared.startup", "_test/", ".git/", "CVS/", "x.shutdown"}, "b c z", ""},
		{"bad dir name skipped", "b[0]=A\n", []string{"my dir/"}, "b", `my dir/: not taken as a machine`},
		{"netkit list", "machines=\"c a\"\na[0]=A\nb[0]=A\n", []string{"d/"}, "c a", "b is not in the lab's machine list"},
		{"jh list commas", "LAB_MACHINES=c,a\n", nil, "c a", ""},
		{"list mixed separators", "machines=a, b\tc\n", nil, "a b c", ""},
		{"list duplicate", "machines=a a\n", nil, "a", "a listed twice"},
		{"list twice", "machines=a\nmachines=b\n", nil, "a", "machine list given again"},
		{"kathara ignores dirs", "LAB_NAME=x\nb[0]=A\n", []string{"z/", "c.startup"}, "b", ""},
		{"unknown var", "FOO=bar\na[0]=A\n", nil, "a", "lab.conf:1: FOO: unknown variable"},
		{"tap and plain domain", "a[0]=ext,1.2.3.4,1.2.3.5\nb[0]=ext\n", nil, "a b", "collision domain ext is a tap domain (a[0]) and a plain one (b[0])"},
		{"meta twice", "LAB_AUTHOR=a\nLAB_AUTHOR=b\na[0]=A\n", nil, "a", "LAB_AUTHOR: given again"},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			l, err := loadConf(t, c.conf, "", c.files...)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, strings.Join(names(l.Machines), " "), c.want)
			var ws []string
			for _, w := range l.Warnings {
				ws = append(ws, w.String())
			}
			all := strings.Join(ws, "\n")
			if c.warn == "" && len(ws) > 0 {
				t.Errorf("unexpected warnings:\n%s", all)
			}
			if c.warn != "" && !strings.Contains(all, c.warn) {
				t.Errorf("warnings:\n%s\nwant one containing %q", all, c.warn)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	l, err := loadConf(t, "a[0]=X\nb[0]=X\nc[0]=X\n", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("all", func(t *testing.T) {
		ms, err := l.Select(nil)
		if err != nil || strings.Join(names(ms), " ") != "a b c" {
			t.Fatalf("%v %v", names(ms), err)
		}
	})
	t.Run("given order, once", func(t *testing.T) {
		ms, err := l.Select([]string{"c", "a", "c"})
		if err != nil || strings.Join(names(ms), " ") != "c a" {
			t.Fatalf("%v %v", names(ms), err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		_, err := l.Select([]string{"a", "nope"})
		var ue *UnknownMachineError
		if !errors.As(err, &ue) || ue.Name != "nope" || !strings.Contains(err.Error(), "(machines: a, b, c)") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("machine", func(t *testing.T) {
		if l.Machine("b") == nil || l.Machine("zz") != nil {
			t.Fatal("Machine lookup")
		}
	})
}

func TestWarningString(t *testing.T) {
	cases := []struct {
		w    Warning
		want string
	}{
		{Warning{File: "lab.conf", Line: 12, Option: "pc1[cpus]", Msg: "m"}, "lab.conf:12: pc1[cpus]: m"},
		{Warning{File: "lab.conf", Line: 3, Msg: "m"}, "lab.conf:3: m"},
		{Warning{File: "lab.conf", Msg: "m"}, "lab.conf: m"},
	}
	for _, c := range cases {
		if got := c.w.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.w, got, c.want)
		}
	}
	if got := (&ParseError{File: "lab.conf", Line: 12, Msg: "m"}).Error(); got != "lab.conf:12: m" {
		t.Errorf("ParseError %q", got)
	}
}

func TestWarningOrder(t *testing.T) {
	l, err := loadConf(t, "z[frob]=1\nLAB_MACHINES=z\nLAB_NAME=x\nLAB_NAME=y\nnonsense\n", "z: ghost\n", "bad name/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range l.Warnings {
		got = append(got, fmt.Sprintf("%s:%d", w.File, w.Line))
	}
	want := "lab.conf:0 lab.conf:1 lab.conf:4 lab.conf:5 lab.dep:1"
	if strings.Join(got, " ") != want {
		t.Fatalf("warning order %v, want %s; warnings %v", got, want, l.Warnings)
	}
}
