package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

const usage = "usage: uml_switchctl PATH COMMAND [ARG...]\n"

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	path, cmd := args[0], strings.Join(args[1:], " ")
	if strings.ContainsAny(cmd, "\n\r") {
		fmt.Fprintf(stderr, "uml_switchctl: a command is one line\n")
		return 2
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "uml_switchctl: %s: %s\n", path, dialProblem(path, err))
		return 2
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		fmt.Fprintf(stderr, "uml_switchctl: %s: %v\n", path, err)
		return 2
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "OK":
			return 0
		case strings.HasPrefix(line, "ERR"):
			fmt.Fprintf(stderr, "uml_switchctl: %s\n", strings.TrimSpace(strings.TrimPrefix(line, "ERR")))
			return 1
		}
		fmt.Fprintln(stdout, line)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "uml_switchctl: %s: %v\n", path, err)
	} else {
		fmt.Fprintf(stderr, "uml_switchctl: %s: connection closed before the reply ended\n", path)
	}
	return 2
}

// dialProblem says in words why path could not be reached: "connection
// refused" alone does not tell a regular file from a switch that is gone.
func dialProblem(path string, err error) string {
	fi, serr := os.Stat(path)
	switch {
	case errors.Is(serr, os.ErrNotExist):
		return "no such file (is the switch running with -mgmt?)"
	case serr == nil && fi.Mode()&os.ModeSocket == 0:
		return "not a socket (give the switch's -mgmt path)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "no switch is listening (it has exited; the socket file is stale)"
	case errors.Is(err, syscall.EPROTOTYPE):
		return "not a management socket (wrong socket type)"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}
