package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Lab is a parsed lab directory.
type Lab struct {
	Dir          string // absolute path of the lab directory
	Format       Format
	FormatReason string            // why this format was detected, e.g. "lab.conf:3: LAB_MACHINES="
	Meta         map[string]string // LAB_DESCRIPTION, LAB_VERSION, LAB_AUTHOR, LAB_EMAIL, LAB_WEB, LAB_NAME
	// Machines in default start order: the machines=/LAB_MACHINES= list if
	// given, else order of first appearance in lab.conf, then (Netkit
	// formats) machines that exist only as a directory or NAME.startup
	// file, sorted.
	Machines []*Machine
	Domains  []*Domain           // every collision domain, sorted by name
	Deps     map[string][]string // from lab.dep: machine -> machines it waits for
	Warnings []Warning

	depLines map[string]int // target -> line of its first lab.dep rule
}

// Machine is one guest of the lab.
type Machine struct {
	Name       string
	Interfaces []Interface // sorted by Index
	Mem        int         // MiB; 0 = not set
	CPUs       int         // 0 = not set
	Image      string      // [image] or [model-fs]; "" = default
	Kernel     string      // [kernel]; "" = default
	Exec       []string    // [exec], in order
	Sysctl     []string    // [sysctl] "key=value", in order
	Env        []string    // [env] "KEY=VALUE", in order
	Append     []string    // [append] extra kernel command-line words
	// Options holds every option line for this machine, raw, in file
	// order, the typed ones above included, so a runner can implement
	// extensions and report what it ignored.
	Options []Option

	HasDir      bool // the lab has a MACHINE/ directory (copied over / at first boot)
	HasStartup  bool // MACHINE.startup exists
	HasShutdown bool // MACHINE.shutdown exists
}

// Option is one raw MACHINE[NAME]=VALUE line.
type Option struct {
	Name, Value string
	Line        int
}

// Interface is one network interface ethIndex of a machine.
type Interface struct {
	Index  int
	Domain string           // collision domain name
	MAC    net.HardwareAddr // explicit (Kathará "B/02:42:...") or MACFor(lab format); never nil after Load
	Tap    *Tap             // non-nil for a Netkit tap interface
	Line   int
}

// Tap is a Netkit tap interface: the host side's and the guest's address.
type Tap struct{ HostAddr, GuestAddr string }

// Domain is a collision domain (one switch) and what is plugged into it.
type Domain struct {
	Name    string
	Members []Member // sorted by machine name, then index
}

// Member is one machine interface on a domain.
type Member struct {
	Machine string
	Index   int
}

// Files of a lab directory, relative to it.
const (
	ConfFile = "lab.conf"
	DepFile  = "lab.dep"
)

// ErrNotLab: the directory has neither lab.conf nor lab.dep (Netkit's lstart
// and Kathará refuse such a directory unless forced; see LoadOptions.Force).
var ErrNotLab = errors.New("not a lab directory: no lab.conf or lab.dep")

// LoadOptions tune Load.
type LoadOptions struct {
	// Force loads a directory without lab.conf and lab.dep, its machines
	// being its subdirectories and .startup files (lstart -F).
	Force bool
	// Format, if not FormatUnknown, overrides format detection.
	Format Format
}

// Load reads the lab in dir: lab.conf (optional only with Force),
// lab.dep (optional), and the machine directories and .startup files.
// Any *ParseError means no Lab.
func Load(dir string) (*Lab, error) { return LoadWith(dir, LoadOptions{}) }

// LoadWith is Load with options.
func LoadWith(dir string, opt LoadOptions) (*Lab, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lab directory %s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("lab directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("lab directory %s: not a directory", abs)
	}
	conf, err := readConf(abs)
	if err != nil {
		return nil, err
	}
	deps, depLines, haveDep, err := readDep(abs)
	if err != nil {
		return nil, err
	}
	if conf == nil && !haveDep && !opt.Force {
		return nil, fmt.Errorf("%s: %w", abs, ErrNotLab)
	}
	if conf == nil {
		conf = &Conf{File: ConfFile}
	}
	ents, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("lab directory: %w", err)
	}
	b := &builder{l: &Lab{Dir: abs, Meta: map[string]string{}, Deps: deps}, c: conf, ents: ents}
	b.l.Warnings = append(b.l.Warnings, conf.Warnings...)
	if opt.Format != FormatUnknown {
		b.l.Format = opt.Format
		b.l.FormatReason = "format given: " + opt.Format.String()
	} else {
		f, reason, ws := conf.DetectFormat()
		b.l.Format, b.l.FormatReason = f, reason
		if _, err := os.Stat(filepath.Join(abs, ConfFile)); err != nil {
			b.l.FormatReason = "no lab.conf; " + f.String() + " assumed"
		}
		b.l.Warnings = append(b.l.Warnings, ws...)
	}
	if err := b.build(); err != nil {
		return nil, err
	}
	if err := b.checkDeps(depLines); err != nil {
		return nil, err
	}
	sortWarnings(b.l.Warnings)
	return b.l, nil
}

func readConf(dir string) (*Conf, error) {
	f, err := os.Open(filepath.Join(dir, ConfFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseConf(ConfFile, f)
}

func readDep(dir string) (map[string][]string, map[string]int, bool, error) {
	f, err := os.Open(filepath.Join(dir, DepFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]string{}, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	defer f.Close()
	deps, lines, err := parseDep(DepFile, f)
	return deps, lines, true, err
}

type builder struct {
	l    *Lab
	c    *Conf
	ents []os.DirEntry
	byNm map[string]*Machine
}

func (b *builder) perr(line int, format string, args ...any) error {
	return &ParseError{File: b.c.File, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (b *builder) warn(line int, opt, format string, args ...any) {
	b.l.Warnings = append(b.l.Warnings, Warning{File: b.c.File, Line: line, Option: opt, Msg: fmt.Sprintf(format, args...)})
}

// metaVars are the lab metadata variables (Netkit's, plus Kathará's LAB_NAME).
var metaVars = map[string]bool{
	"LAB_DESCRIPTION": true, "LAB_VERSION": true, "LAB_AUTHOR": true,
	"LAB_EMAIL": true, "LAB_WEB": true, "LAB_NAME": true,
	// umlab's: hub (the default, as Netkit) or switch for the lab's
	// collision domains.
	"LAB_SWITCH_MODE": true,
}

var (
	// Kathará's lab.conf grammar: machine names [a-z0-9_]{1,30},
	// collision domains \w+.
	katharaName   = regexp.MustCompile(`^[a-z0-9_]{1,30}$`)
	katharaDomain = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	// Netkit-JH's hostname_regex (a hostname(7) label).
	jhName = regexp.MustCompile(`^([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]{0,61}[a-zA-Z0-9])$`)
)

// reservedNames are directories of a lab that are never machines (both
// Netkit and Kathará reserve them).
var reservedNames = map[string]bool{"shared": true, "_test": true}

// machineNameErr checks a machine name against the shared rule and the
// lab format's own.
func (b *builder) machineNameErr(name string) string {
	if msg := checkName(name); msg != "" {
		return msg
	}
	if reservedNames[name] {
		return "reserved: the lab's " + name + " directory is not a machine"
	}
	switch b.l.Format {
	case FormatKathara:
		if !katharaName.MatchString(name) {
			return "Kathará machine names are 1 to 30 of a-z, 0-9 and '_'"
		}
	case FormatNetkitJH:
		if !jhName.MatchString(name) {
			return "Netkit-JH machine names are hostnames: letters, digits and '-', not at either end"
		}
	}
	return ""
}

func (b *builder) machine(name string) *Machine {
	if m := b.byNm[name]; m != nil {
		return m
	}
	m := &Machine{Name: name}
	b.byNm[name] = m
	b.l.Machines = append(b.l.Machines, m)
	return m
}

func (b *builder) build() error {
	l := b.l
	b.byNm = map[string]*Machine{}

	// Variables: metadata and the machine list.
	var list []string
	listed := map[string]bool{}
	haveList := false
	for _, v := range b.c.Vars {
		switch {
		case metaVars[v.Name]:
			if _, dup := l.Meta[v.Name]; dup {
				b.warn(v.Line, v.Name, "given again; the first value is kept (as Netkit does)")
				continue
			}
			l.Meta[v.Name] = v.Value
		case v.Name == "machines" || v.Name == "LAB_MACHINES":
			if haveList {
				b.warn(v.Line, v.Name, "machine list given again; the first one is kept (as Netkit does)")
				continue
			}
			haveList = true
			// Netkit 2.8 separates with spaces, Netkit-JH with commas;
			// both are accepted in either variable.
			for _, n := range strings.FieldsFunc(v.Value, func(r rune) bool {
				return r == ',' || r == ' ' || r == '\t'
			}) {
				if msg := b.machineNameErr(n); msg != "" {
					return b.perr(v.Line, "%s: invalid machine name %q: %s", v.Name, n, msg)
				}
				if listed[n] {
					b.warn(v.Line, v.Name, "%s listed twice", n)
					continue
				}
				listed[n] = true
				list = append(list, n)
			}
		default:
			b.warn(v.Line, v.Name, "unknown variable, ignored")
		}
	}
	for _, n := range list {
		b.machine(n)
	}

	// Assignment lines.
	type ifkey struct {
		m string
		i int
	}
	ifLine := map[ifkey]int{}
	lastLine := map[string]int{} // "machine[opt]" -> line of the previous value
	notListed := map[string]bool{}
	for _, e := range b.c.Entries {
		tag := e.Machine + "[" + e.Arg + "]"
		if msg := b.machineNameErr(e.Machine); msg != "" {
			return b.perr(e.Line, "invalid machine name %q: %s", e.Machine, msg)
		}
		if haveList && !listed[e.Machine] {
			if !notListed[e.Machine] {
				notListed[e.Machine] = true
				b.warn(e.Line, tag, "%s is not in the lab's machine list; its lines are ignored (as Netkit does)", e.Machine)
			}
			continue
		}
		m := b.machine(e.Machine)
		if isDigits(e.Arg) {
			ifc, err := b.iface(e)
			if err != nil {
				return err
			}
			k := ifkey{e.Machine, ifc.Index}
			if prev, dup := ifLine[k]; dup {
				return b.perr(e.Line, "%s: interface %d of %s already defined on line %d", tag, ifc.Index, e.Machine, prev)
			}
			ifLine[k] = e.Line
			m.Interfaces = append(m.Interfaces, ifc)
			continue
		}
		m.Options = append(m.Options, Option{Name: e.Arg, Value: e.Value, Line: e.Line})
		spec, ok := LookupOption(e.Arg)
		if !ok {
			b.warn(e.Line, tag, "unknown option, ignored")
			continue
		}
		if !spec.Repeatable {
			if prev, dup := lastLine[tag]; dup {
				b.warn(e.Line, tag, "given again (first on line %d); this value replaces it", prev)
			}
			lastLine[tag] = e.Line
		}
		if spec.Unsupported != "" {
			b.warn(e.Line, tag, "%s", spec.Unsupported)
		}
		if spec.Apply == nil {
			continue
		}
		if err := spec.Apply(l.Format, m, e.Value); err != nil {
			return b.perr(e.Line, "%s: %v", tag, err)
		}
		if e.Arg == "cpus" {
			if f, _ := strconv.ParseFloat(strings.TrimSpace(e.Value), 64); f != float64(m.CPUs) {
				b.warn(e.Line, tag, "a UML guest has whole CPUs: %s rounded up to %d", e.Value, m.CPUs)
			}
		}
	}

	// Machines known only from the directory: Netkit's rule (Kathará
	// takes its machines from lab.conf alone).
	if !haveList && l.Format != FormatKathara {
		var extra []string
		seen := map[string]bool{}
		for _, de := range b.ents {
			n := de.Name()
			isDir := de.IsDir()
			if !isDir && de.Type()&fs.ModeSymlink != 0 {
				if st, err := os.Stat(filepath.Join(l.Dir, n)); err == nil && st.IsDir() {
					isDir = true
				}
			}
			if !isDir {
				s, ok := strings.CutSuffix(n, ".startup")
				if !ok || !isFile(filepath.Join(l.Dir, n)) {
					continue
				}
				n = s
			}
			if b.byNm[n] != nil || seen[n] || reservedNames[n] || n == "" || n[0] == '.' || n == "CVS" {
				continue
			}
			if msg := b.machineNameErr(n); msg != "" {
				what := n + "/"
				if !isDir {
					what = n + ".startup"
				}
				b.l.Warnings = append(b.l.Warnings, Warning{File: what,
					Msg: fmt.Sprintf("not taken as a machine: invalid machine name %q: %s", n, msg)})
				continue
			}
			seen[n] = true
			extra = append(extra, n)
		}
		sort.Strings(extra)
		for _, n := range extra {
			b.machine(n)
		}
	}

	// Per-machine checks, MACs, files.
	doms := map[string]*Domain{}
	for _, m := range l.Machines {
		sort.SliceStable(m.Interfaces, func(i, j int) bool { return m.Interfaces[i].Index < m.Interfaces[j].Index })
		if l.Format == FormatKathara {
			// Kathará numbers interfaces from 0 without gaps.
			for i, ifc := range m.Interfaces {
				if ifc.Index != i {
					return b.perr(ifc.Line, "%s[%d]: interface %d of %s is missing (Kathará numbers interfaces from 0 without gaps)",
						m.Name, ifc.Index, i, m.Name)
				}
			}
		}
		onDom := map[string]int{}
		for i := range m.Interfaces {
			ifc := &m.Interfaces[i]
			if prev, dup := onDom[ifc.Domain]; dup {
				if l.Format == FormatKathara {
					return b.perr(ifc.Line, "%s[%d]: %s is already on collision domain %s (interface %d); Kathará allows one interface per domain",
						m.Name, ifc.Index, m.Name, ifc.Domain, prev)
				}
				b.warn(ifc.Line, fmt.Sprintf("%s[%d]", m.Name, ifc.Index), "second interface of %s on collision domain %s (first: eth%d)", m.Name, ifc.Domain, prev)
			} else {
				onDom[ifc.Domain] = ifc.Index
			}
			if ifc.MAC == nil {
				ifc.MAC = MACFor(l.Format, m.Name, ifc.Index)
			}
			d := doms[ifc.Domain]
			if d == nil {
				d = &Domain{Name: ifc.Domain}
				doms[ifc.Domain] = d
			}
			d.Members = append(d.Members, Member{Machine: m.Name, Index: ifc.Index})
		}
		if st, err := os.Stat(filepath.Join(l.Dir, m.Name)); err == nil && st.IsDir() {
			m.HasDir = true
		}
		m.HasStartup = isFile(filepath.Join(l.Dir, m.Name+".startup"))
		m.HasShutdown = isFile(filepath.Join(l.Dir, m.Name+".shutdown"))
	}
	for _, d := range doms {
		sort.Slice(d.Members, func(i, j int) bool {
			if d.Members[i].Machine != d.Members[j].Machine {
				return d.Members[i].Machine < d.Members[j].Machine
			}
			return d.Members[i].Index < d.Members[j].Index
		})
		l.Domains = append(l.Domains, d)
	}
	sort.Slice(l.Domains, func(i, j int) bool { return l.Domains[i].Name < l.Domains[j].Name })

	// Netkit-JH keeps a tap domain's hub apart from a plain domain of the
	// same name; umlab has one switch per name.
	tapDom := map[string]string{}
	plainDom := map[string]string{}
	for _, m := range l.Machines {
		for _, ifc := range m.Interfaces {
			who := fmt.Sprintf("%s[%d]", m.Name, ifc.Index)
			if ifc.Tap != nil {
				if _, ok := tapDom[ifc.Domain]; !ok {
					tapDom[ifc.Domain] = who
				}
			} else if _, ok := plainDom[ifc.Domain]; !ok {
				plainDom[ifc.Domain] = who
			}
		}
	}
	var tapNames []string
	for d := range tapDom {
		tapNames = append(tapNames, d)
	}
	sort.Strings(tapNames)
	for _, d := range tapNames {
		who := tapDom[d]
		if other, ok := plainDom[d]; ok {
			b.warn(0, "", "collision domain %s is a tap domain (%s) and a plain one (%s); Netkit keeps them apart, umlab joins them", d, who, other)
		}
	}

	// Duplicate explicit MACs in one domain would make the switch flap.
	seenMAC := map[string]string{}
	for _, m := range l.Machines {
		for _, ifc := range m.Interfaces {
			k := ifc.Domain + "\x00" + ifc.MAC.String()
			who := fmt.Sprintf("%s[%d]", m.Name, ifc.Index)
			if prev, dup := seenMAC[k]; dup {
				b.warn(ifc.Line, who, "same MAC %s as %s on collision domain %s", ifc.MAC, prev, ifc.Domain)
			} else {
				seenMAC[k] = who
			}
		}
	}
	return nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// maxIface bounds interface numbers: far above any lab (Netkit's default
// limit is 40) and keeps "ethN" short.
const maxIface = 255

// iface parses MACHINE[N]=VALUE: a collision domain, Kathará's
// DOMAIN/MAC, or a Netkit tap (2.8: tap,TAP_ADDR,GUEST_ADDR; JH:
// DOMAIN,TAP_ADDR,GUEST_ADDR).
func (b *builder) iface(e Entry) (Interface, error) {
	tag := e.Machine + "[" + e.Arg + "]"
	if len(e.Arg) > 1 && e.Arg[0] == '0' {
		return Interface{}, b.perr(e.Line, "%s: interface number with a leading zero", tag)
	}
	idx, err := strconv.Atoi(e.Arg)
	if err != nil || idx > maxIface {
		return Interface{}, b.perr(e.Line, "%s: interface number above %d", tag, maxIface)
	}
	ifc := Interface{Index: idx, Line: e.Line}
	v := e.Value
	switch {
	case strings.Contains(v, ","):
		parts := strings.Split(v, ",")
		if len(parts) != 3 {
			return ifc, b.perr(e.Line, "%s: tap interface %q: want DOMAIN,TAP_ADDR,GUEST_ADDR", tag, v)
		}
		for _, a := range parts[1:] {
			if ip := net.ParseIP(a); ip == nil || ip.To4() == nil || !strings.Contains(a, ".") {
				return ifc, b.perr(e.Line, "%s: tap interface %q: %q is not an IPv4 address", tag, v, a)
			}
		}
		v = parts[0]
		ifc.Tap = &Tap{HostAddr: parts[1], GuestAddr: parts[2]}
	case strings.Contains(v, "/"):
		// Kathará splits on '/' and drops empty parts.
		var parts []string
		for _, p := range strings.Split(v, "/") {
			if p != "" {
				parts = append(parts, p)
			}
		}
		if len(parts) != 2 {
			return ifc, b.perr(e.Line, "%s: %q: want DOMAIN/MAC", tag, v)
		}
		mac, msg := parseMAC(parts[1])
		if msg != "" {
			return ifc, b.perr(e.Line, "%s: bad MAC address %q: %s", tag, parts[1], msg)
		}
		v, ifc.MAC = parts[0], mac
	}
	if v == "" {
		return ifc, b.perr(e.Line, "%s: empty collision domain name", tag)
	}
	if msg := checkName(v); msg != "" {
		return ifc, b.perr(e.Line, "%s: invalid collision domain name %q: %s", tag, v, msg)
	}
	if b.l.Format == FormatKathara && !katharaDomain.MatchString(v) {
		return ifc, b.perr(e.Line, "%s: invalid collision domain name %q: Kathará allows letters, digits and '_'", tag, v)
	}
	ifc.Domain = v
	return ifc, nil
}

// Machine returns the machine called name, or nil.
func (l *Lab) Machine(name string) *Machine {
	for _, m := range l.Machines {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// UnknownMachineError: a selection names a machine the lab does not have.
type UnknownMachineError struct {
	Name     string
	Dir      string
	Machines []string // the lab's machines
}

func (e *UnknownMachineError) Error() string {
	return fmt.Sprintf("no machine %q in lab %s (machines: %s)", e.Name, e.Dir, strings.Join(e.Machines, ", "))
}

// Select returns the named machines in the order given, each once; nil or
// empty names select every machine in default start order.
func (l *Lab) Select(names []string) ([]*Machine, error) {
	if len(names) == 0 {
		return append([]*Machine(nil), l.Machines...), nil
	}
	var out []*Machine
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		m := l.Machine(n)
		if m == nil {
			all := make([]string, len(l.Machines))
			for i, m := range l.Machines {
				all[i] = m.Name
			}
			return nil, &UnknownMachineError{Name: n, Dir: l.Dir, Machines: all}
		}
		out = append(out, m)
	}
	return out, nil
}

// sortWarnings orders warnings as a user reads the lab: lab.conf by line,
// then other files of the directory, then lab.dep by line.
func sortWarnings(ws []Warning) {
	rank := func(f string) int {
		switch f {
		case ConfFile:
			return 0
		case DepFile:
			return 2
		}
		return 1
	}
	sort.SliceStable(ws, func(i, j int) bool {
		if ri, rj := rank(ws[i].File), rank(ws[j].File); ri != rj {
			return ri < rj
		}
		if ws[i].File != ws[j].File {
			return ws[i].File < ws[j].File
		}
		return ws[i].Line < ws[j].Line
	})
}
