//go:build linux

// Package term tells the commands whether a file is a terminal, which
// decides between interactive and scripted behaviour (uml_mconsole's line
// editing, uml_moo's progress line, uml_switch's EOF on stdin).
package term

import (
	"os"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether f is a terminal: whether it answers TCGETS, as
// isatty(3) asks.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
