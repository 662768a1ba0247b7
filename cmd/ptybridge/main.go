// Command ptybridge is a serial cross-over cable between two UML guests.
//
// Synopsis:
//
//	ptybridge [-tee FILE] [-hex] PTY_A PTY_B
//	ptybridge [-tee FILE] [-hex] -new
//
// With two paths it bridges the ptys two guests were given (ssl1=pts makes
// a UML print "Serial line 1 assigned device '/dev/pts/N'"), raw, both
// ways, and exits with status 1 when either side closes. With -new it
// allocates two ptys, prints their paths (A, then B, one per line) for
// guests started with ssl1=tty:PATH, and keeps bridging while either guest
// reboots. -tee logs every chunk with its direction and a timestamp
// (-hex: as hex). SIGUSR1 cuts the cable, and heals it the next time.
// SIGINT or SIGTERM stop it with status 0.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
