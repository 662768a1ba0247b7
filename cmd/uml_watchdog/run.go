package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/umlutils/umlutils/mconsole"
	"github.com/umlutils/umlutils/watchdog"
)

const usage = "Usage: uml_watchdog -pid PID | -mconsole NOTIFY_SOCKET\n"

// Knobs for tests; the kernel never sets them.
var (
	timeout      = watchdog.DefaultTimeout
	killInterval = time.Second
)

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 4 && (args[0] == "-pid" && args[2] == "-mconsole" || args[0] == "-mconsole" && args[2] == "-pid") {
		// The C helper takes both and acts on one; say which is wrong.
		fmt.Fprintf(stderr, "uml_watchdog: -pid and -mconsole exclude each other\n%s", usage)
		return 1
	}
	if len(args) != 2 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	var expire func() error
	switch args[0] {
	case "-pid":
		pid, err := strconv.Atoi(args[1])
		if err != nil || pid <= 1 {
			fmt.Fprintf(stderr, "uml_watchdog: bad pid %q\n%s", args[1], usage)
			return 1
		}
		// As the C helper does (kill(pid, 0)), refuse a pid that names no
		// process before saying we are ready: there is no guest to guard.
		if err := syscall.Kill(pid, 0); err != nil {
			fmt.Fprintf(stderr, "uml_watchdog: pid %d: %v\n", pid, err)
			return 1
		}
		expire = func() error { return watchdog.KillGuest(pid, killInterval) }
	case "-mconsole":
		sock := args[1]
		expire = func() error {
			return mconsole.Notify(sock, &mconsole.Notification{Type: mconsole.NotifyHang})
		}
	default:
		fmt.Fprintf(stderr, "uml_watchdog: unknown option %s\n%s", args[0], usage)
		return 1
	}
	w := &watchdog.Helper{In: stdin, Out: stdout, Timeout: timeout}
	err := w.Wait(context.Background())
	if err == nil {
		return 0
	}
	if !errors.Is(err, watchdog.ErrExpired) {
		fmt.Fprintf(stderr, "uml_watchdog: %v\n", err)
		return 1
	}
	if err := expire(); err != nil {
		fmt.Fprintf(stderr, "uml_watchdog: %v\n", err)
	}
	return 1
}
