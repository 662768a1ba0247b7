package lab

import (
	"fmt"
	"strings"
)

// Format is the lab dialect a lab.conf is written in.
type Format int

const (
	FormatUnknown  Format = iota
	FormatNetkit          // Netkit 2.8
	FormatNetkitJH        // Netkit-JH
	FormatKathara         // Kathará
)

func (f Format) String() string {
	switch f {
	case FormatNetkit:
		return "netkit"
	case FormatNetkitJH:
		return "netkit-jh"
	case FormatKathara:
		return "kathara"
	}
	return "unknown"
}

// ParseFormat is the inverse of Format.String (for a command-line flag that
// overrides detection).
func ParseFormat(s string) (Format, error) {
	for _, f := range []Format{FormatNetkit, FormatNetkitJH, FormatKathara} {
		if s == f.String() {
			return f, nil
		}
	}
	return FormatUnknown, fmt.Errorf("unknown lab format %q (want netkit, netkit-jh or kathara)", s)
}

// DefaultFormat is the format of a lab.conf with no marker of any dialect
// (see the package documentation for why).
const DefaultFormat = FormatNetkit

// marker is one line that identifies a dialect.
type marker struct {
	f    Format // FormatUnknown with family: either Netkit dialect
	fam  bool
	line int
	what string
}

// markers collects every line of c that only one dialect (or only the
// Netkit family) writes.
func (c *Conf) markers() []marker {
	var ms []marker
	for _, v := range c.Vars {
		switch v.Name {
		case "LAB_MACHINES":
			ms = append(ms, marker{f: FormatNetkitJH, line: v.Line, what: "LAB_MACHINES="})
		case "machines":
			ms = append(ms, marker{f: FormatNetkit, line: v.Line, what: "machines="})
		case "LAB_NAME":
			ms = append(ms, marker{f: FormatKathara, line: v.Line, what: "LAB_NAME="})
		}
		if v.Comment {
			ms = append(ms, marker{f: FormatKathara, line: v.Line, what: "trailing # comment"})
		}
	}
	for _, e := range c.Entries {
		if e.Comment {
			ms = append(ms, marker{f: FormatKathara, line: e.Line, what: "trailing # comment"})
		}
		if isDigits(e.Arg) {
			switch {
			case strings.Contains(e.Value, ","):
				dom, _, _ := strings.Cut(e.Value, ",")
				if dom == "tap" {
					ms = append(ms, marker{f: FormatNetkit, line: e.Line, what: "tap,TAP_ADDR,GUEST_ADDR interface"})
				} else {
					ms = append(ms, marker{f: FormatNetkitJH, line: e.Line, what: "DOMAIN,TAP_ADDR,GUEST_ADDR interface"})
				}
			case strings.Contains(e.Value, "/"):
				ms = append(ms, marker{f: FormatKathara, line: e.Line, what: "MAC address after '/'"})
			}
			continue
		}
		s, ok := LookupOption(e.Arg)
		if !ok {
			continue
		}
		what := "[" + e.Arg + "]"
		if s.NetkitFamily {
			ms = append(ms, marker{fam: true, line: e.Line, what: what})
		} else if s.Marks != FormatUnknown {
			ms = append(ms, marker{f: s.Marks, line: e.Line, what: what})
		}
	}
	return ms
}

// DetectFormat decides which dialect c is written in from its markers. The
// Kathará markers are counted against the Netkit ones (2.8, JH and those
// both share); the larger side wins, Kathará on a tie since its markers
// are syntax Netkit could not have written. Within Netkit, JH wins over
// 2.8 if it has more markers. It returns the format, the reason (naming
// the deciding line), and a warning when markers of several dialects
// appear. With no markers it returns DefaultFormat.
func (c *Conf) DetectFormat() (Format, string, []Warning) {
	ms := c.markers()
	var nK, nJH, n28, nFam int
	first := map[Format]*marker{}
	var firstFam *marker
	for i := range ms {
		m := &ms[i]
		switch {
		case m.fam:
			nFam++
			if firstFam == nil {
				firstFam = m
			}
			continue
		case m.f == FormatKathara:
			nK++
		case m.f == FormatNetkitJH:
			nJH++
		case m.f == FormatNetkit:
			n28++
		}
		if first[m.f] == nil {
			first[m.f] = m
		}
	}
	nNetkit := nJH + n28 + nFam
	if nK == 0 && nNetkit == 0 {
		return DefaultFormat, fmt.Sprintf("%s: no line marks a dialect; %s assumed", c.File, DefaultFormat), nil
	}
	var f Format
	switch {
	case nK >= nNetkit:
		f = FormatKathara
	case nJH > n28:
		f = FormatNetkitJH
	default:
		f = FormatNetkit
	}
	var m *marker
	if f == FormatKathara || f == FormatNetkitJH || n28 > 0 {
		m = first[f]
	} else {
		m = firstFam
	}
	reason := fmt.Sprintf("%s:%d: %s", c.File, m.line, m.what)
	count := map[Format]int{FormatKathara: nK, FormatNetkitJH: nJH, FormatNetkit: n28}
	var tally []string
	if n := count[f]; n > 0 {
		tally = append(tally, fmt.Sprintf("%d %s markers", n, f))
	}
	if f != FormatKathara && nFam > 0 {
		tally = append(tally, fmt.Sprintf("%d Netkit options", nFam))
	}
	reason += " (" + strings.Join(tally, ", ") + ")"
	var warns []Warning
	if (nK > 0 && nNetkit > 0) || (nJH > 0 && n28 > 0) {
		var parts []string
		for _, g := range []Format{FormatKathara, FormatNetkitJH, FormatNetkit} {
			if fm := first[g]; fm != nil {
				parts = append(parts, fmt.Sprintf("%s %d (first: line %d %s)", g, count[g], fm.line, fm.what))
			}
		}
		if nFam > 0 {
			parts = append(parts, fmt.Sprintf("Netkit options %d (first: line %d %s)", nFam, firstFam.line, firstFam.what))
		}
		warns = append(warns, Warning{File: c.File, Msg: fmt.Sprintf(
			"markers of several lab formats: %s; treated as %s", strings.Join(parts, ", "), f)})
		reason += "; chosen by majority over conflicting markers"
	}
	return f, reason, warns
}
