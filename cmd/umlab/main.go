// Command umlab runs Netkit and Kathará lab directories on User-Mode
// Linux guests, with uml_switch hubs for collision domains and COW disks
// over one shared root image, without root.
//
// Synopsis:
//
//	umlab start [-d DIR] [-p N] [-f] [--switch] [-t SECONDS] [MACHINE...]
//	umlab exec [-d DIR] MACHINE [--] CMD...
//	umlab connect [-d DIR] MACHINE
//	umlab halt|crash [-d DIR] [MACHINE...]
//	umlab clean|info|logs|list|dump|image ...
//
// Installed also as lstart, lhalt, lcrash, lclean and linfo for Netkit
// habits. See umlab(1).
package main

import "os"

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
