package lab

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// ParseDep reads lab.dep: make(1) rule lines "TARGET...: PREREQUISITE...",
// meaning each target machine starts only after its prerequisites have
// finished starting. '#' starts a comment, a line ending in '\' continues
// on the next, blank lines are skipped, and several rules for one target
// add up (as in make, and as Netkit-JH's lstart merges them). Anything else
// make would read differently (variables, recipes, "::") is a *ParseError.
func ParseDep(file string, r io.Reader) (map[string][]string, error) {
	deps, _, err := parseDep(file, r)
	return deps, err
}

// parseDep also returns, per target, the line of its first rule.
func parseDep(file string, r io.Reader) (map[string][]string, map[string]int, error) {
	deps := map[string][]string{}
	lines := map[string]int{}
	perr := func(line int, format string, args ...any) error {
		return &ParseError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	var buf strings.Builder
	start := 0
	rule := func(line int, text string) error {
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		if strings.TrimSpace(text) == "" {
			return nil
		}
		if text[0] == '\t' {
			return perr(line, "recipe lines (starting with a tab) are not allowed; write TARGET: PREREQUISITE...")
		}
		lhs, rhs, ok := strings.Cut(text, ":")
		if !ok {
			return perr(line, "missing ':'; write TARGET: PREREQUISITE...")
		}
		if strings.HasPrefix(rhs, ":") || strings.HasPrefix(rhs, "=") || strings.ContainsAny(lhs, "=") {
			return perr(line, "not a plain rule (variables, ':=' and '::' are make features lab.dep does not use)")
		}
		targets := strings.Fields(lhs)
		if len(targets) == 0 {
			return perr(line, "no target before ':'")
		}
		pre := strings.Fields(rhs)
		for _, n := range append(append([]string(nil), targets...), pre...) {
			if msg := checkName(n); msg != "" {
				return perr(line, "invalid machine name %q: %s", n, msg)
			}
		}
		for _, t := range targets {
			if _, ok := lines[t]; !ok {
				lines[t] = line
			}
			have := map[string]bool{}
			for _, p := range deps[t] {
				have[p] = true
			}
			if deps[t] == nil {
				deps[t] = []string{}
			}
			for _, p := range pre {
				if !have[p] {
					have[p] = true
					deps[t] = append(deps[t], p)
				}
			}
		}
		return nil
	}
	err := scanLines(file, r, func(n int, line string) error {
		if buf.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			buf.WriteString(strings.TrimSuffix(line, "\\"))
			buf.WriteByte(' ')
			return nil
		}
		buf.WriteString(line)
		text := buf.String()
		buf.Reset()
		return rule(start, text)
	})
	if err != nil {
		return nil, nil, err
	}
	if buf.Len() > 0 {
		if err := rule(start, buf.String()); err != nil {
			return nil, nil, err
		}
	}
	return deps, lines, nil
}

// CycleError: lab.dep makes machines wait for each other in a circle.
type CycleError struct {
	File  string
	Line  int      // the rule of the cycle's first machine
	Cycle []string // a -> b -> ... -> a, first machine repeated at the end
}

func (e *CycleError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	return fmt.Sprintf("%s: dependency cycle: %s", loc, strings.Join(e.Cycle, " -> "))
}

// findCycle returns a cycle among nodes (in order) following edges that
// stay inside in, or nil.
func findCycle(nodes []string, in map[string]bool, deps map[string][]string) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cyc []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range deps[n] {
			if !in[d] {
				continue
			}
			switch color[d] {
			case grey:
				for i, s := range stack {
					if s == d {
						cyc = append(append([]string(nil), stack[i:]...), d)
						return true
					}
				}
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range nodes {
		if color[n] == white && visit(n) {
			return cyc
		}
	}
	return nil
}

// checkDeps warns about lab.dep names that are not machines and about
// cycles (Waves refuses to order a selection with a cycle).
func (b *builder) checkDeps(lines map[string]int) error {
	l := b.l
	known := map[string]bool{}
	for _, m := range l.Machines {
		known[m.Name] = true
	}
	l.depLines = lines
	var ws []Warning
	for t, ps := range l.Deps {
		for _, n := range append([]string{t}, ps...) {
			if !known[n] {
				ws = append(ws, Warning{File: DepFile, Line: lines[t], Option: n,
					Msg: "not a machine of this lab; ignored"})
			}
		}
	}
	sort.Slice(ws, func(i, j int) bool {
		if ws[i].Line != ws[j].Line {
			return ws[i].Line < ws[j].Line
		}
		return ws[i].Option < ws[j].Option
	})
	l.Warnings = append(l.Warnings, ws...)
	in := map[string]bool{}
	var nodes []string
	for _, m := range l.Machines {
		in[m.Name] = true
		nodes = append(nodes, m.Name)
	}
	if cyc := findCycle(nodes, in, l.Deps); cyc != nil {
		ce := &CycleError{File: DepFile, Line: lines[cyc[0]], Cycle: cyc}
		l.Warnings = append(l.Warnings, Warning{File: DepFile, Line: ce.Line,
			Msg: "dependency cycle: " + strings.Join(cyc, " -> ") + " (machines in it cannot be started)"})
	}
	return nil
}

// Waves orders the selected machines (nil or empty: all) for starting:
// each wave holds the machines whose lab.dep prerequisites are all in
// earlier waves, in selection order; prerequisites outside the selection
// are ignored. A cycle among the selected machines is a *CycleError.
func (l *Lab) Waves(names []string) ([][]string, error) {
	sel, err := l.Select(names)
	if err != nil {
		return nil, err
	}
	in := map[string]bool{}
	var order []string
	for _, m := range sel {
		in[m.Name] = true
		order = append(order, m.Name)
	}
	done := map[string]bool{}
	var waves [][]string
	for len(done) < len(order) {
		var wave []string
		for _, n := range order {
			if done[n] {
				continue
			}
			ready := true
			for _, d := range l.Deps[n] {
				if in[d] && !done[d] {
					ready = false
					break
				}
			}
			if ready {
				wave = append(wave, n)
			}
		}
		if len(wave) == 0 {
			var rest []string
			for _, n := range order {
				if !done[n] {
					rest = append(rest, n)
				}
			}
			restIn := map[string]bool{}
			for _, n := range rest {
				restIn[n] = true
			}
			cyc := findCycle(rest, restIn, l.Deps)
			if cyc == nil { // cannot happen: no ready machine means a cycle
				cyc = rest
			}
			return nil, &CycleError{File: DepFile, Line: l.depLines[cyc[0]], Cycle: cyc}
		}
		for _, n := range wave {
			done[n] = true
		}
		waves = append(waves, wave)
	}
	return waves, nil
}
