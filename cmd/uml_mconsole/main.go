// Command uml_mconsole sends management console commands to a running
// User-Mode Linux guest.
//
// Synopsis:
//
//	uml_mconsole [OPTIONS] UMID [COMMAND...]
//	uml_mconsole -l|--list [--json]
//
// With a COMMAND it sends it once, prints the guest's answer as "OK text" or
// "ERR text" and exits with the answer's error code truncated to 8 bits
// (as the C uml_mconsole does). Without one it reads commands: with line
// editing and history and the prompt "(UMID) " on a terminal, plainly (no
// prompt, no echo) from a pipe. UMID is looked up as ~/.uml/UMID/mconsole,
// /tmp/uml/UMID/mconsole, then as a socket path.
//
// Options (only before UMID):
//
//	-t, --timeout SECONDS  give up on a guest that does not answer (default 5)
//	-l, --list             list running guests: umid, pid, socket
//	--json                 print one JSON object per command
//	-h, --help             print this help
//
// Local commands: quit, help, switch UMID, log -f FILE, mconsole-version,
// int (SIGINT to the guest's kernel process).
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
