// Command uml_switch is a virtual Ethernet switch for User-Mode Linux guests,
// a drop-in replacement for the C uml_switch of uml-utilities.
//
// Synopsis:
//
//	uml_switch [-unix CTL] [-hub] [-tap DEV] [-daemon] [-q] [-pcap FILE|-]
//	           [-mode OCTAL] [-group GROUP] [-mac-age SECONDS] [-mac-table N]
//	uml_switch -compat-v0 [-unix CTL DATA] ...
//
// Guests attach with eth0=daemon,,unix,CTL. See uml_switch(1).
package main

import (
	"os"
	"syscall"
)

func main() {
	code, sig := runMain(os.Args, os.Stdin, os.Stdout, os.Stderr)
	if sig != 0 {
		// Die by the signal, as the C switch does after cleaning up.
		signalReset(sig)
		_ = syscall.Kill(os.Getpid(), sig)
	}
	os.Exit(code)
}
