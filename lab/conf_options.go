package lab

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// OptionSpec describes one MACHINE[NAME]=VALUE option: which dialect it
// marks, whether it may repeat, whether umlab acts on it, and how to take
// its value into a Machine. Every option line is also kept raw in
// Machine.Options, so a runner extension can act on options it registers
// with only a Name (and a Check for early validation).
type OptionSpec struct {
	// Name as written between the brackets. A trailing '#' stands for a
	// decimal number: "ubd#" matches ubd1, ubd2, ...
	Name string
	// Marks is the dialect whose lab.conf this option identifies
	// (FormatUnknown: none), used by format detection. NetkitFamily marks
	// both Netkit dialects without telling them apart.
	Marks Format
	// NetkitFamily: an option of Netkit's vstart (2.8 and JH alike).
	NetkitFamily bool
	// Repeatable options accumulate; others warn when given twice and the
	// last value wins (Kathará's rule).
	Repeatable bool
	// Unsupported, when not empty, is the warning umlab gives for the
	// option (the lab still loads).
	Unsupported string
	// Apply validates the value and stores it in m; an error becomes a
	// ParseError at the option's line. nil: the option is only kept raw.
	Apply func(f Format, m *Machine, value string) error
}

var (
	optMu    sync.RWMutex
	optTable = map[string]OptionSpec{}
)

// RegisterOption adds or replaces an option in the table of known options.
// The runner calls it (from init) for the extensions it implements, e.g.
// "ssl#", "ubd#" or "tap"; it also replaces an Unsupported entry once
// umlab supports the option.
func RegisterOption(s OptionSpec) {
	optMu.Lock()
	defer optMu.Unlock()
	optTable[s.Name] = s
}

// LookupOption finds the spec for an option name as written in lab.conf.
func LookupOption(name string) (OptionSpec, bool) {
	optMu.RLock()
	defer optMu.RUnlock()
	if s, ok := optTable[name]; ok {
		return s, true
	}
	stem := strings.TrimRight(name, "0123456789")
	if stem != name && stem != "" {
		if s, ok := optTable[stem+"#"]; ok {
			return s, true
		}
	}
	return OptionSpec{}, false
}

// KnownOptions lists the registered option names, sorted.
func KnownOptions() []string {
	optMu.RLock()
	defer optMu.RUnlock()
	names := make([]string, 0, len(optTable))
	for n := range optTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func init() {
	for _, s := range []OptionSpec{
		{Name: "mem", Apply: applyMem},
		{Name: "cpus", Marks: FormatKathara, Apply: applyCPUs},
		{Name: "image", Marks: FormatKathara, Apply: applyImage},
		{Name: "model-fs", NetkitFamily: true, Apply: applyImage},
		{Name: "kernel", NetkitFamily: true, Apply: func(_ Format, m *Machine, v string) error {
			if v == "" {
				return fmt.Errorf("empty kernel path")
			}
			m.Kernel = v
			return nil
		}},
		{Name: "exec", Repeatable: true, Apply: func(_ Format, m *Machine, v string) error {
			m.Exec = append(m.Exec, v)
			return nil
		}},
		{Name: "sysctl", Marks: FormatKathara, Repeatable: true, Apply: applySysctl},
		{Name: "env", Marks: FormatKathara, Repeatable: true, Apply: applyEnv},
		{Name: "append", NetkitFamily: true, Repeatable: true, Apply: applyAppend},

		// Options of the dialects that umlab does not implement (yet).
		// The runner re-registers the ones it comes to support.
		{Name: "filesystem", NetkitFamily: true,
			Unsupported: "not supported: it names the machine's COW file, which umlab keeps as MACHINE.disk in the lab's state"},
		{Name: "con0", NetkitFamily: true, Unsupported: "not supported: umlab gives every machine its own console (umlab connect)"},
		{Name: "con1", NetkitFamily: true, Unsupported: "not supported: umlab gives every machine its own console (umlab connect)"},
		{Name: "xterm", NetkitFamily: true, Unsupported: "not supported: umlab opens no terminal windows (umlab connect)"},
		{Name: "hostlab", NetkitFamily: true, Unsupported: "not supported: the lab directory is always mounted at /hostlab"},
		{Name: "hostwd", Marks: FormatNetkit, Unsupported: "not supported"},
		{Name: "mount", Marks: FormatNetkitJH, Repeatable: true, Unsupported: "not supported: guests see host files only under the lab directory"},
		{Name: "bridged", Marks: FormatKathara, Unsupported: "not supported: no bridge to the host's network"},
		{Name: "port", Marks: FormatKathara, Repeatable: true, Unsupported: "not supported: no port forwarding from the host"},
		// [ipv6]=false turns IPv6 off in the guest (the runner's sysctls);
		// true leaves it on, as guests have it.
		{Name: "ipv6", Marks: FormatKathara},
		{Name: "shell", Marks: FormatKathara, Unsupported: "not supported: umlab connect runs the guest's root shell"},
		{Name: "num_terms", Marks: FormatKathara, Unsupported: "not supported: umlab opens no terminal windows"},
		{Name: "ulimit", Marks: FormatKathara, Repeatable: true, Unsupported: "not supported"},
		{Name: "privileged", Marks: FormatKathara, Unsupported: "not needed: a UML guest's root is always privileged inside the guest"},
	} {
		RegisterOption(s)
	}
}

// parseMem reads a memory size in MiB: a bare number is MB (Netkit's vstart
// --mem and Kathará alike); Kathará also takes a b/k/m/g unit suffix.
func parseMem(v string) (int, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return 0, fmt.Errorf("empty memory size")
	}
	mult := float64(1 << 20)
	switch s[len(s)-1] {
	case 'b', 'B':
		mult = 1
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
	case 'g', 'G':
		mult = 1 << 30
	default:
		mult = 0
	}
	num := s
	if mult != 0 {
		num = s[:len(s)-1]
	} else {
		mult = 1 << 20
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("memory size %q: want a number of MB, optionally with a unit b, k, m or g", v)
	}
	mib := float64(n) * mult / (1 << 20)
	if mib < 1 {
		return 0, fmt.Errorf("memory size %q is less than 1 MiB", v)
	}
	if mib > 1<<30 {
		return 0, fmt.Errorf("memory size %q is too large", v)
	}
	return int(mib), nil
}

func applyMem(_ Format, m *Machine, v string) error {
	mib, err := parseMem(v)
	if err != nil {
		return err
	}
	m.Mem = mib
	return nil
}

// applyCPUs takes Kathará's cpus, a possibly fractional CPU share; a UML
// guest has whole CPUs, so a fraction rounds up (see Load's warning).
func applyCPUs(_ Format, m *Machine, v string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > 1024 {
		return fmt.Errorf("cpus %q: want a positive number", v)
	}
	m.CPUs = int(math.Ceil(f))
	return nil
}

func applyImage(_ Format, m *Machine, v string) error {
	if v == "" {
		return fmt.Errorf("empty image name")
	}
	m.Image = v
	return nil
}

// sysctlRe is the shape Kathará checks (key=value, no second '='), widened
// from its net.* namespace to any dotted key: a UML guest has its own
// kernel, so kernel.* and vm.* keys can be honoured too.
var sysctlRe = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+=[^=]*$`)

func applySysctl(_ Format, m *Machine, v string) error {
	if !sysctlRe.MatchString(v) {
		return fmt.Errorf("sysctl %q: want KEY=VALUE with a dotted key such as net.ipv4.ip_forward=1", v)
	}
	k, val, _ := strings.Cut(v, "=")
	m.Sysctl = append(m.Sysctl, strings.TrimSpace(k)+"="+strings.TrimSpace(val))
	return nil
}

// envRe: Kathará's env shape, KEY=VALUE with a \w+ key.
var envRe = regexp.MustCompile(`^[A-Za-z0-9_]+=`)

func applyEnv(_ Format, m *Machine, v string) error {
	if !envRe.MatchString(v) {
		return fmt.Errorf("env %q: want KEY=VALUE", v)
	}
	m.Env = append(m.Env, v)
	return nil
}

// applyAppend splits vstart's --append PARAM into kernel command-line
// words (one lab.conf line may carry several, separated by spaces).
func applyAppend(_ Format, m *Machine, v string) error {
	words := strings.Fields(v)
	if len(words) == 0 {
		return fmt.Errorf("empty kernel parameter")
	}
	m.Append = append(m.Append, words...)
	return nil
}
