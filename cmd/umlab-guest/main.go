// Command umlab-guest is umlab's guest side: it is not run on the host.
// umlab copies it onto the small read-only disk every lab guest boots
// from, where the kernel starts it as /init; inside the guest it is also
// the agent and the runner of the lab's startup and shutdown files.
//
// Synopsis:
//
//	/init                       (as PID 1) prepare the machine's disk, then exec systemd
//	umlab-guest agent           serve the host on the serial lines
//	umlab-guest startup         run the lab's startup files
//	umlab-guest shutdown        run the lab's shutdown files
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/umlutils/umlutils/lab/guest"
	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if os.Getpid() == 1 {
		err := guest.Init()
		fmt.Fprintf(os.Stderr, "umlab: guest init failed: %v\n", err)
		// Give the console time to carry the message, then power off so
		// the host sees the kernel exit.
		time.Sleep(time.Second)
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		return 1
	}
	var err error
	switch cmd := first(args); cmd {
	case "agent":
		err = guest.Agent()
	case "startup":
		err = guest.Startup()
	case "shutdown":
		err = guest.Shutdown()
	default:
		fmt.Fprintf(os.Stderr, "umlab-guest: runs inside a lab guest (agent, startup, shutdown), not on the host; see umlab(1)\n")
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "umlab-guest %s: %v\n", first(args), err)
		return 1
	}
	return 0
}

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
