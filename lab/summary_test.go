package lab

import (
	"fmt"
	"sort"
	"strings"
)

// summary renders what Load found in a compact, stable text form, so the
// fixture tests compare everything at once and a failure shows the diff.
func summary(l *Lab) string {
	var b strings.Builder
	fmt.Fprintf(&b, "format %s (%s)\n", l.Format, l.FormatReason)
	var keys []string
	for k := range l.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "meta %s=%q\n", k, l.Meta[k])
	}
	for _, m := range l.Machines {
		fmt.Fprintf(&b, "machine %s", m.Name)
		if m.Mem != 0 {
			fmt.Fprintf(&b, " mem=%d", m.Mem)
		}
		if m.CPUs != 0 {
			fmt.Fprintf(&b, " cpus=%d", m.CPUs)
		}
		if m.Image != "" {
			fmt.Fprintf(&b, " image=%s", m.Image)
		}
		if m.Kernel != "" {
			fmt.Fprintf(&b, " kernel=%s", m.Kernel)
		}
		for _, s := range m.Exec {
			fmt.Fprintf(&b, " exec=%q", s)
		}
		for _, s := range m.Sysctl {
			fmt.Fprintf(&b, " sysctl=%s", s)
		}
		for _, s := range m.Env {
			fmt.Fprintf(&b, " env=%q", s)
		}
		if len(m.Append) > 0 {
			fmt.Fprintf(&b, " append=%q", m.Append)
		}
		if m.HasDir {
			b.WriteString(" dir")
		}
		if m.HasStartup {
			b.WriteString(" startup")
		}
		if m.HasShutdown {
			b.WriteString(" shutdown")
		}
		b.WriteString("\n")
		for _, i := range m.Interfaces {
			fmt.Fprintf(&b, "  eth%d %s %s", i.Index, i.Domain, i.MAC)
			if i.Tap != nil {
				fmt.Fprintf(&b, " tap %s %s", i.Tap.HostAddr, i.Tap.GuestAddr)
			}
			fmt.Fprintf(&b, " line %d\n", i.Line)
		}
		for _, o := range m.Options {
			fmt.Fprintf(&b, "  [%s]=%q line %d\n", o.Name, o.Value, o.Line)
		}
	}
	for _, d := range l.Domains {
		fmt.Fprintf(&b, "domain %s", d.Name)
		for _, m := range d.Members {
			fmt.Fprintf(&b, " %s.%d", m.Machine, m.Index)
		}
		b.WriteString("\n")
	}
	keys = keys[:0]
	for k := range l.Deps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "dep %s: %s\n", k, strings.Join(l.Deps[k], " "))
	}
	for _, w := range l.Warnings {
		fmt.Fprintf(&b, "warning %s\n", w)
	}
	return b.String()
}
