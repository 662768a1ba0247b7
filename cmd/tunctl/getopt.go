package main

import "fmt"

// option is one option getopt found, with its argument if it takes one.
type option struct {
	name byte
	arg  string
}

// getopt parses args (without the program name) the way glibc's getopt(3)
// does for optstring spec of single letters, "x:" taking an argument:
// options may be clustered ("-bt tap0") and an argument may be attached
// ("-ttap0") or be the next word, whatever it looks like ("-t -b" names a
// device "-b"); "--" ends the options. Like glibc, non-option words are
// permuted to the end (so options after them still count) unless posix is
// set (POSIXLY_CORRECT), when the first one ends the options.
//
// It returns the options found before the first error, the operands, and
// that error in glibc's wording (prefixed with the program name by the
// caller), or "" when there was none.
func getopt(args []string, spec string, posix bool) (opts []option, operands []string, errMsg string) {
	takesArg := func(c byte) (known, arg bool) {
		if c == ':' {
			return false, false
		}
		for i := 0; i < len(spec); i++ {
			if spec[i] == c {
				return true, i+1 < len(spec) && spec[i+1] == ':'
			}
		}
		return false, false
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return opts, append(operands, args[i+1:]...), ""
		}
		if len(a) < 2 || a[0] != '-' {
			if posix {
				return opts, append(operands, args[i:]...), ""
			}
			operands = append(operands, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			known, needsArg := takesArg(c)
			if !known {
				return opts, operands, fmt.Sprintf("invalid option -- '%c'", c)
			}
			if !needsArg {
				opts = append(opts, option{name: c})
				continue
			}
			if j+1 < len(a) {
				opts = append(opts, option{name: c, arg: a[j+1:]})
			} else if i+1 < len(args) {
				i++
				opts = append(opts, option{name: c, arg: args[i]})
			} else {
				return opts, operands, fmt.Sprintf("option requires an argument -- '%c'", c)
			}
			break
		}
	}
	return opts, operands, ""
}
