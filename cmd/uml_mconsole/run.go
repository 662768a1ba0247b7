package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ergochat/readline"

	"github.com/umlutils/umlutils/internal/term"
	"github.com/umlutils/umlutils/mconsole"
)

const usage = `Usage: uml_mconsole [OPTIONS] UMID [COMMAND...]
       uml_mconsole -l|--list [--json]
Options (before UMID):
  -t, --timeout SECONDS  give up on a guest that does not answer (default 5)
  -l, --list             list running guests (umid, pid, socket)
      --json             print one JSON object per command
  -h, --help             print this help
`

// listProbeTimeout bounds each guest's answer in --list unless -t says
// otherwise.
const listProbeTimeout = 2 * time.Second

// localHelp is printed after the kernel's help, word for word as the C
// client prints it.
const localHelp = `Additional local mconsole commands:
    quit - Quit mconsole
    switch <socket-name> - Switch control to the given machine
    log -f <filename> - use contents of <filename> as UML log messages
    mconsole-version - version of this mconsole program
    int  - Interrupt UML session
`

// session is one run of the client: the guest it talks to and how it
// prints.
type session struct {
	res     *mconsole.Resolution
	timeout time.Duration
	json    bool
	stdout  io.Writer
	stderr  io.Writer
	quit    bool
	client  *mconsole.Client
	// timeoutSet is true when -t was given.
	timeoutSet bool
	// noAnswer is set when a command got no answer at all (stale socket,
	// timeout): an interactive or piped run then exits 1.
	noAnswer bool
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := &session{timeout: mconsole.DefaultTimeout, stdout: stdout, stderr: stderr}
	list := false
	i := 0
opts:
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			i++
			break opts
		case a == "-h" || a == "--help":
			fmt.Fprint(stdout, usage)
			return 0
		case a == "-l" || a == "--list":
			list = true
		case a == "--json":
			s.json = true
		case a == "-t" || a == "--timeout" || strings.HasPrefix(a, "--timeout="):
			v := strings.TrimPrefix(a, "--timeout=")
			if v == a {
				if i+1 >= len(args) {
					fmt.Fprintf(stderr, "uml_mconsole: %s needs a number of seconds\n%s", a, usage)
					return 1
				}
				i++
				v = args[i]
			}
			secs, err := strconv.ParseFloat(v, 64)
			// Written so that NaN fails too; under a millisecond the
			// duration would round to the client's default.
			if err != nil || !(secs >= 0.001 && secs <= 1e6) {
				fmt.Fprintf(stderr, "uml_mconsole: bad timeout %q: want a positive number of seconds\n", v)
				return 1
			}
			s.timeout = time.Duration(secs * float64(time.Second))
			s.timeoutSet = true
		case len(a) > 1 && a[0] == '-':
			fmt.Fprintf(stderr, "uml_mconsole: unknown option %s\n%s", a, usage)
			return 1
		default:
			break opts
		}
	}
	args = args[i:]
	if list {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "uml_mconsole: --list takes no UMID or command\n%s", usage)
			return 1
		}
		return s.list()
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	res, err := mconsole.Resolve(args[0])
	if err != nil {
		if len(args) == 1 {
			fmt.Fprintf(stderr, "uml_mconsole: %v\n", err)
			return 1
		}
		s.res = &mconsole.Resolution{Name: args[0]}
		s.fail(strings.Join(args[1:], " "), err, err.Error())
		return 1
	}
	s.res = res
	if len(args) > 1 {
		return s.issue(strings.Join(args[1:], " "))
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(f) {
		return s.interactive(f)
	}
	return s.piped(stdin)
}

// prompt is "(UMID) " with the name cut to 10 bytes, as the C client's
// fixed-size buffer cuts it.
func (s *session) prompt() string {
	n := s.res.Name
	if len(n) > 10 {
		n = n[:10]
	}
	return "(" + n + ") "
}

// interactive reads commands from a terminal with line editing and
// history. The exit status is 0 unless a command got no answer at all.
func (s *session) interactive(tty *os.File) int {
	rl, err := readline.NewFromConfig(&readline.Config{
		Prompt:          s.prompt(),
		Stdin:           tty,
		Stdout:          s.stdout,
		Stderr:          s.stderr,
		HistoryLimit:    1000,
		InterruptPrompt: "^C",
		EOFPrompt:       "\n",
		FuncIsTerminal:  func() bool { return true },
	})
	if err != nil {
		fmt.Fprintf(s.stderr, "uml_mconsole: %v\n", err)
		return 1
	}
	defer rl.Close()
	for !s.quit {
		rl.SetPrompt(s.prompt())
		line, err := rl.ReadLine()
		if errors.Is(err, readline.ErrInterrupt) {
			continue // ^C drops the line being typed, as in a shell
		}
		if err != nil {
			fmt.Fprintln(s.stdout) // the C client ends with a newline at EOF
			break
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		s.issue(line)
	}
	if s.noAnswer {
		return 1
	}
	return 0
}

// piped reads one command per line from a pipe or file and prints only the
// answers: no prompt, no echo (the C client mixes both into its output).
// Blank lines are sent as the C client sends them (the guest answers "ERR
// Unknown command"), so the answers line up with the C client's.
func (s *session) piped(r io.Reader) int {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for !s.quit && sc.Scan() {
		s.issue(sc.Text())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(s.stderr, "uml_mconsole: reading commands: %v\n", err)
		return 1
	}
	if s.noAnswer {
		return 1
	}
	return 0
}

// list prints the running guests under ~/.uml: umid, pid and socket, or
// one JSON object per guest.
func (s *session) list() int {
	probe := s.timeout
	if !s.timeoutSet {
		// A running guest answers in milliseconds; do not let a frozen
		// one hold up the whole listing for the full default timeout.
		probe = listProbeTimeout
	}
	dir := mconsole.UMLDir()
	if dir == "" {
		fmt.Fprintln(s.stderr, "uml_mconsole: cannot list guests: no home directory ($HOME is not set) to find ~/.uml in")
		return 1
	}
	guests, err := mconsole.List(context.Background(), dir, probe)
	if err != nil {
		fmt.Fprintf(s.stderr, "uml_mconsole: listing %s: %v\n", dir, err)
		return 1
	}
	for _, g := range guests {
		if s.json {
			b, _ := json.Marshal(g)
			fmt.Fprintf(s.stdout, "%s\n", b)
			continue
		}
		fmt.Fprintf(s.stdout, "%-16s %7d %s\n", g.UMID, g.PID, g.Socket)
	}
	return 0
}
