// Command tunctl creates and deletes persistent TUN/TAP devices for a user,
// a drop-in for the tunctl of uml-utilities.
//
// Synopsis:
//
//	tunctl [-b] [-n] [-u owner] [-g group] [-t device-name] [-f tun-clone-device]
//	tunctl -d device-name [-f tun-clone-device]
//	tunctl -l [-b]
//
// Options are parsed as glibc getopt(3) does ("-bt tap0", "-ttap0").
// -b prints only the device name; -n (ours) makes a tun device instead of a
// tap; -l (ours) lists the tun/tap devices of the current network namespace
// with their owner, group and persistence.
package main

import "os"

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
