// Command uml_switchctl sends one command to a uml_switch management socket
// (uml_switch -mgmt PATH) and prints the reply.
//
// Synopsis:
//
//	uml_switchctl PATH COMMAND [ARG...]
//
// Commands: ports, macs, stats (each optionally followed by "json"),
// port N up|down|clear, port N loss PCT [in], port N delay MS [JITTER_MS]
// [in], hub on|off, pcap start FILE, pcap stop, help. The exit status is 0
// for OK, 1 for ERR (the reason goes to standard error), 2 for usage or
// connection errors. See uml_switchctl(1).
package main

import (
	"os"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
