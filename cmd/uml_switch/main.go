// Command uml_switch is a virtual Ethernet switch for User-Mode Linux guests,
// a drop-in replacement for the C uml_switch of uml-utilities.
//
// Synopsis:
//
//	uml_switch [-unix CTL] [-hub] [-tap DEV] [-daemon] [-q] [-pcap FILE|-]
//	           [-mode OCTAL] [-group GROUP] [-mac-age SECONDS] [-mac-table N]
//	           [-bess PATH] [-stream PATH] [-mgmt PATH]
//	uml_switch -compat-v0 [-unix CTL DATA] ...
//
// UML guests attach with eth0=daemon,,unix,CTL or vec0:transport=bess,dst=PATH,
// QEMU guests with -netdev stream,server=off,addr.type=unix,addr.path=PATH.
// See uml_switch(1).
package main

import (
	"os"
	"syscall"
	"unsafe"
)

func main() {
	code, sig := runMain(os.Args, os.Stdin, os.Stdout, os.Stderr)
	if sig != 0 {
		// Die by the signal after cleaning up, as the C switch does.
		dieBy(sig)
	}
	os.Exit(code)
}

// dieBy restores the signal's default action and sends it to ourselves.
// signal.Reset is not enough: it restores SIG_IGN when the signal was
// ignored at start (background jobs of a shell start so for SIGINT).
func dieBy(sig syscall.Signal) {
	var act struct {
		handler  uintptr // SIG_DFL
		flags    uint64
		restorer uintptr
		mask     uint64
	}
	_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	_ = syscall.Kill(os.Getpid(), sig)
}
