package main

import (
	"errors"
	"math"
	"syscall"
	"unicode"
)

// strtol mirrors C's strtol(s, &end, 0) followed by the C tool's check
// that *end is NUL: leading white space, an optional sign, then hex after
// "0x", octal after "0", decimal otherwise; out-of-range values clamp to
// LONG_MIN/LONG_MAX. With no digits at all strtol consumes nothing, so only
// the empty string is accepted (as 0).
func strtol(s string) (int64, bool) {
	if s == "" {
		return 0, true
	}
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := uint64(10)
	if i < len(s) && s[i] == '0' {
		base = 8
		if i+2 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && digitVal(s[i+2]) < 16 {
			base, i = 16, i+2
		}
	}
	start := i
	var v uint64
	over := false
	for i < len(s) {
		d := uint64(digitVal(s[i]))
		if d >= base {
			break
		}
		if v > (math.MaxUint64-d)/base {
			over = true
		} else {
			v = v*base + d
		}
		i++
	}
	if i == start || i != len(s) {
		return 0, false
	}
	switch {
	case neg && (over || v > 1<<63):
		return math.MinInt64, true
	case neg:
		return -int64(v), true
	case over || v > math.MaxInt64:
		return math.MaxInt64, true
	}
	return int64(v), true
}

func isCSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

func digitVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

// strerror gives glibc's text for an errno (Go's table holds the same
// strings with a lower-case first letter), as perror(3) prints it.
func strerror(err error) string {
	var en syscall.Errno
	if !errors.As(err, &en) {
		return err.Error()
	}
	r := []rune(en.Error())
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}
