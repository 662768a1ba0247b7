package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// flagSpec is one option of a subcommand. Options are parsed the way
// Netkit's and Kathará's users type them: short options may carry their
// value attached (-p4) or in the next word (-p 4), long ones after = or in
// the next word; options may come before or after machine names; "--" ends
// them.
type flagSpec struct {
	short, long string
	value       bool // takes a value
	optional    bool // the value may be absent (-p alone)
}

type flagSet struct {
	specs []flagSpec
	vals  map[string]string // by long name ("" value: given without one)
	rest  []string
	dash  []string // the words after "--"
}

func parseFlags(args []string, specs ...flagSpec) (*flagSet, error) {
	fs := &flagSet{specs: specs, vals: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			fs.dash = args[i+1:]
			return fs, nil
		}
		if len(a) < 2 || a[0] != '-' {
			fs.rest = append(fs.rest, a)
			continue
		}
		var sp *flagSpec
		var val string
		hasVal := false
		if strings.HasPrefix(a, "--") {
			name, v, eq := strings.Cut(a[2:], "=")
			for j := range specs {
				if specs[j].long == name {
					sp = &specs[j]
				}
			}
			if sp == nil {
				return nil, fmt.Errorf("unknown option --%s", name)
			}
			val, hasVal = v, eq
		} else {
			for j := range specs {
				if specs[j].short != "" && strings.HasPrefix(a[1:], specs[j].short) &&
					(len(a) == 1+len(specs[j].short) || specs[j].value) {
					sp = &specs[j]
				}
			}
			if sp == nil {
				return nil, fmt.Errorf("unknown option %s", a)
			}
			if rest := a[1+len(sp.short):]; rest != "" {
				val, hasVal = rest, true
			}
		}
		if !sp.value && hasVal {
			return nil, fmt.Errorf("option %s takes no value", a)
		}
		if sp.value && !hasVal {
			next := i+1 < len(args)
			if sp.optional && (!next || !isNumber(args[i+1])) {
				// -p alone: the option's default.
			} else if !next {
				return nil, fmt.Errorf("option %s needs a value", a)
			} else {
				i++
				val = args[i]
			}
		}
		fs.vals[sp.long] = val
	}
	return fs, nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func (fs *flagSet) has(long string) bool {
	_, ok := fs.vals[long]
	return ok
}

func (fs *flagSet) str(long, def string) string {
	if v, ok := fs.vals[long]; ok && v != "" {
		return v
	}
	return def
}

func (fs *flagSet) num(long string, def int) (int, error) {
	v, ok := fs.vals[long]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--%s: %q is not a number", long, v)
	}
	return n, nil
}

// duration reads a number of seconds or a Go duration (90s, 2m).
func (fs *flagSet) duration(long string, def time.Duration) (time.Duration, error) {
	v, ok := fs.vals[long]
	if !ok || v == "" {
		return def, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--%s: %q is not a duration", long, v)
	}
	return d, nil
}
