package lab

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ParseError is a malformed lab.conf or lab.dep line. Load returns no Lab
// when it meets one.
type ParseError struct {
	File string // as given to ParseConf/ParseDep; Load gives names relative to the lab directory
	Line int    // 1-based; 0 when the error concerns the whole file
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Warning is something in a lab that umlab ignores or that may not do what
// the lab's author meant; the lab still loads.
type Warning struct {
	File   string // relative to the lab directory
	Line   int    // 0 when not tied to a line
	Option string // e.g. "pc1[cpus]", "LAB_FOO", or "" when none applies
	Msg    string
}

func (w Warning) String() string {
	var b strings.Builder
	b.WriteString(w.File)
	if w.Line > 0 {
		fmt.Fprintf(&b, ":%d", w.Line)
	}
	if w.Option != "" {
		b.WriteString(": ")
		b.WriteString(w.Option)
	}
	b.WriteString(": ")
	b.WriteString(w.Msg)
	return b.String()
}

// Conf is lab.conf as written, before the lab's format is applied: the
// assignment lines in file order, the variable lines, and warnings for lines
// that are neither.
type Conf struct {
	File     string
	Entries  []Entry // MACHINE[ARG]=VALUE lines, in file order
	Vars     []Var   // NAME=VALUE lines (LAB_*, machines), in file order
	Warnings []Warning
}

// Entry is one MACHINE[ARG]=VALUE line.
type Entry struct {
	Machine string
	Arg     string // a number (interface) or an option name
	Value   string // quotes removed, trailing comment removed
	Quote   byte   // '"' or '\'' when the value was quoted, else 0
	Comment bool   // the line had a trailing "# comment"
	Line    int
}

// Var is one NAME=VALUE line such as LAB_DESCRIPTION="..." or machines="a b".
type Var struct {
	Name    string
	Value   string
	Quote   byte
	Comment bool
	Line    int
}

// maxLineLen bounds one lab.conf or lab.dep line; real labs stay far below,
// and it keeps a hostile file from making the parser buffer without limit.
const maxLineLen = 1 << 20

// ParseConf reads lab.conf syntax from r. file names the input in errors
// and warnings. Lines are trimmed of surrounding white space (as Kathará
// does); blank lines and lines starting with '#' are comments. A line whose
// first word is followed by '[' is an assignment and must be well formed
// (MACHINE[ARG]=VALUE, safe machine name, ARG a number or an option name);
// NAME=VALUE lines are variables; any other line is ignored with a warning,
// as Netkit ignores it (Kathará would refuse the lab).
func ParseConf(file string, r io.Reader) (*Conf, error) {
	c := &Conf{File: file}
	err := scanLines(file, r, func(n int, raw string) error {
		return c.parseLine(n, raw)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// scanLines calls fn for each line of r (without its newline or a CR
// before it), numbering lines from 1.
func scanLines(file string, r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(n, strings.TrimSuffix(sc.Text(), "\r")); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return &ParseError{File: file, Line: n + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLineLen)}
		}
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

func (c *Conf) perr(line int, format string, args ...any) error {
	return &ParseError{File: c.File, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (c *Conf) warn(line int, opt, format string, args ...any) {
	c.Warnings = append(c.Warnings, Warning{File: c.File, Line: line, Option: opt, Msg: fmt.Sprintf(format, args...)})
}

func (c *Conf) parseLine(n int, raw string) error {
	if !utf8.ValidString(raw) {
		return c.perr(n, "line is not valid UTF-8")
	}
	line := strings.TrimSpace(raw)
	if line == "" || line[0] == '#' {
		return nil
	}
	if i := strings.IndexByte(line, '['); i > 0 && !strings.ContainsAny(line[:i], "= \t") {
		return c.parseEntry(n, line, i)
	}
	if i := strings.IndexByte(line, '='); i > 0 && isVarName(line[:i]) {
		val, q, comment, msg := parseValue(line[i+1:])
		if msg != "" {
			return c.perr(n, "%s: %s", line[:i], msg)
		}
		c.Vars = append(c.Vars, Var{Name: line[:i], Value: val, Quote: q, Comment: comment, Line: n})
		return nil
	}
	c.warn(n, "", "line ignored: neither MACHINE[ARG]=VALUE nor NAME=VALUE (Netkit ignores it, Kathará would refuse the lab)")
	return nil
}

func (c *Conf) parseEntry(n int, line string, open int) error {
	name := line[:open]
	if msg := checkName(name); msg != "" {
		return c.perr(n, "invalid machine name %q: %s", name, msg)
	}
	rest := line[open+1:]
	close := strings.IndexByte(rest, ']')
	if close < 0 {
		return c.perr(n, "%s[: missing ']'", name)
	}
	arg := rest[:close]
	rest = rest[close+1:]
	if arg == "" {
		return c.perr(n, "%s[]: empty interface number or option name", name)
	}
	if !isDigits(arg) && !isOptionName(arg) {
		return c.perr(n, "%s[%s]: %q is neither an interface number nor an option name", name, arg, arg)
	}
	if rest == "" || rest[0] != '=' {
		return c.perr(n, "%s[%s]: expected '=' right after ']'", name, arg)
	}
	val, q, comment, msg := parseValue(rest[1:])
	if msg != "" {
		return c.perr(n, "%s[%s]: %s", name, arg, msg)
	}
	c.Entries = append(c.Entries, Entry{Machine: name, Arg: arg, Value: val, Quote: q, Comment: comment, Line: n})
	return nil
}

// parseValue takes what follows '=' on a trimmed line. A value quoted with
// " or ' ends at the matching quote (a '#' inside is part of the value) and
// may be followed only by white space and a comment. An unquoted value ends
// where white space is followed by '#', Kathará's trailing comment; a '#'
// not preceded by white space belongs to the value (Kathará's rule too).
func parseValue(s string) (val string, quote byte, comment bool, msg string) {
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		q := s[0]
		end := strings.IndexByte(s[1:], q)
		if end < 0 {
			return "", 0, false, fmt.Sprintf("unterminated %c quote", q)
		}
		val = s[1 : 1+end]
		after := strings.TrimLeft(s[2+end:], " \t")
		switch {
		case after == "":
		case after[0] == '#' && len(after) < len(s[2+end:]):
			comment = true
		default:
			return "", 0, false, fmt.Sprintf("text after the closing %c quote: %q", q, after)
		}
		return val, q, comment, ""
	}
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return strings.TrimRight(s[:i], " \t"), 0, true, ""
		}
	}
	return s, 0, false, ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isOptionName: a word of letters, digits, '_' and '-' that does not start
// with a digit (vstart's long option names, Kathará's \w+).
func isOptionName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// isVarName: a shell variable name, as Netkit's lcommon evals LAB_* and
// machines= assignments.
func isVarName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_') {
			return false
		}
	}
	return true
}

// maxNameLen is a hostname label's limit (hostname(7)); umlab also uses
// machine and domain names in file names and UML command-line words.
const maxNameLen = 63

// checkName applies the rule every format shares to a machine or
// collision-domain name: 1 to 63 bytes of letters, digits, '_', '.' and
// '-', not starting with '-' or '.', no "..". That keeps names safe as file
// names and as words of UML's command line, which splits on ',', ':' and
// '=' and white space. It returns "" or why the name is refused.
func checkName(s string) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > maxNameLen:
		return fmt.Sprintf("longer than %d bytes", maxNameLen)
	case s[0] == '-':
		return "starts with '-'"
	case s[0] == '.':
		return "starts with '.'"
	case strings.Contains(s, ".."):
		return `contains ".."`
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '.' || b == '-') {
			return fmt.Sprintf("character %q not allowed (letters, digits, '_', '.' and '-' only)", rune(b))
		}
	}
	return ""
}
