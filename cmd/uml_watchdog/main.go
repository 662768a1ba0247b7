// Command uml_watchdog is the host-side helper of User-Mode Linux's
// harddog watchdog device; the guest kernel starts it, not the user.
//
// Synopsis:
//
//	uml_watchdog -pid PID
//	uml_watchdog -mconsole NOTIFY_SOCKET
//
// It writes one byte to stdout to say it is ready, then expects at least
// one byte on stdin every 60 seconds (a ping from the guest). EOF on stdin
// (the guest closed /dev/watchdog) ends it with status 0. When pings stop:
// with -pid it sends SIGINT to the guest's kernel process twice, one second
// apart, then SIGKILLs the kernel process and every process descended from
// it; with -mconsole it sends a hang notification to NOTIFY_SOCKET (the
// guest's mconsole=notify:PATH). Either way it then exits with status 1.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
