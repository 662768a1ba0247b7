package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/umlutils/umlutils/cow"
	"github.com/umlutils/umlutils/mconsole"
)

// logChunk is how much text one `log` request carries: the data field less
// "log " and the NUL, as the C client splits it.
const logChunk = mconsole.MaxData - len("log ") - 2

// issue runs one command line and returns the exit status a one-shot run
// has for it: the kernel's error code truncated to 8 bits, 0 for local
// commands that worked, 1 for local failures.
func (s *session) issue(line string) int {
	// The C client trims trailing blanks (left by filename completion).
	line = strings.TrimRight(line, " \t\n\r\v\f")
	word, rest := splitWord(line)
	switch word {
	case "quit":
		s.quit = true
		if s.json {
			return s.local("quit", "")
		}
		return 0
	case "help":
		return s.help(line)
	case "switch":
		return s.switchTo(rest)
	case "log":
		return s.log(rest)
	case "mconsole-version":
		return s.local("mconsole-version", "uml_mconsole client version 2\n")
	case "int":
		return s.interrupt()
	}
	return s.send(fixFilenames(line, s.stderr))
}

func splitWord(line string) (word, rest string) {
	line = strings.TrimLeft(line, " \t")
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		return line[:i], strings.TrimLeft(line[i:], " \t")
	}
	return line, ""
}

// result is what --json prints for one command.
type result struct {
	UMID    string `json:"umid"`
	Command string `json:"command"`
	OK      bool   `json:"ok"`
	Err     int32  `json:"err"`
	Output  string `json:"output"`
}

func (s *session) printJSON(r result) {
	b, _ := json.Marshal(r)
	fmt.Fprintf(s.stdout, "%s\n", b)
}

// local prints the output of a command answered by the client itself.
func (s *session) local(command, text string) int {
	if s.json {
		s.printJSON(result{UMID: s.res.Name, Command: command, OK: true, Output: text})
	} else {
		fmt.Fprint(s.stdout, text)
	}
	return 0
}

// exchange sends a command to the guest. On no answer it prints why and
// returns nil.
func (s *session) exchange(command string) *mconsole.Reply {
	if s.client == nil {
		s.client = &mconsole.Client{Socket: s.res.Socket, Timeout: s.timeout}
	}
	r, err := s.client.Command(context.Background(), command)
	if err != nil {
		s.noAnswer = true
		s.fail(command, err, s.describe(err))
		return nil
	}
	return r
}

// fail reports a command that failed on this side (no answer, a file
// that cannot be read, ...): a line on stderr and, with --json, an object
// on stdout too, so a program reading one object per command never waits
// for one that does not come. Its err is the negated errno of the
// failure, as the kernel reports its own errors.
func (s *session) fail(command string, err error, msg string) {
	fmt.Fprintf(s.stderr, "uml_mconsole: %s\n", msg)
	if s.json {
		s.printJSON(result{UMID: s.res.Name, Command: command, OK: false, Err: -int32(errnoOf(err)), Output: msg})
	}
}

// errnoOf is the errno that best names a local failure.
func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	var ns *mconsole.NotSocketError
	switch {
	case errors.Is(err, mconsole.ErrTimeout):
		return syscall.ETIMEDOUT
	case errors.Is(err, mconsole.ErrStale):
		return syscall.ECONNREFUSED
	case errors.Is(err, mconsole.ErrNoSuchUMID):
		return syscall.ENOENT
	case errors.As(err, &ns):
		return syscall.ENOTSOCK
	case errors.Is(err, mconsole.ErrMalformed):
		return syscall.EPROTO
	case errors.As(err, &en):
		return en
	}
	return syscall.EIO
}

// describe says in one line why a command got no answer.
func (s *session) describe(err error) string {
	name := s.res.Name
	if name != s.res.Socket {
		name = fmt.Sprintf("%s (%s)", s.res.Name, s.res.Socket)
	}
	switch {
	case errors.Is(err, mconsole.ErrTimeout):
		return fmt.Sprintf("%s: no reply within %v: the guest is frozen or hung", name, s.timeout)
	case errors.Is(err, mconsole.ErrStale):
		return fmt.Sprintf("%s: nobody listens on the socket: the guest is gone (stale socket)", name)
	case errors.Is(err, mconsole.ErrNoSuchUMID):
		return fmt.Sprintf("%s: the socket has disappeared: the guest is gone", name)
	case errors.Is(err, syscall.EPROTOTYPE):
		return fmt.Sprintf("%s: not a UML mconsole socket (a stream or seqpacket socket, not a datagram one)", name)
	case errors.Is(err, mconsole.ErrMalformed):
		var e *mconsole.Error
		if errors.As(err, &e) {
			err = e.Err
		}
		return fmt.Sprintf("%s: %v", name, err)
	}
	return err.Error()
}

// send passes a command to the guest and prints its answer.
func (s *session) send(command string) int {
	r := s.exchange(command)
	if r == nil {
		return 1
	}
	s.printReply(command, r, "")
	return r.ExitStatus()
}

func (s *session) printReply(command string, r *mconsole.Reply, extra string) {
	if s.json {
		s.printJSON(result{UMID: s.res.Name, Command: command, OK: r.OK(), Err: int32(r.Err), Output: r.Text + extra})
		return
	}
	fmt.Fprintf(s.stdout, "%s\n%s", r, extra)
}

// help prints the kernel's help, then the local commands. Like the C
// client it exits 0 whatever the kernel said.
func (s *session) help(line string) int {
	r := s.exchange(line)
	if r == nil {
		return 1
	}
	s.printReply(line, r, localHelp)
	return 0
}

func (s *session) switchTo(name string) int {
	res, err := mconsole.Resolve(name)
	if err != nil {
		s.fail("switch "+name, err, fmt.Sprintf("switch: %v", err))
		return 1
	}
	s.res = res
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	return s.local("switch "+name, fmt.Sprintf("Switched to '%s'\n", name))
}

// log enters text, or a file's contents with -f, into the guest's kernel
// log. Like the C client it sends the text in pieces that fit a request
// and ends with a newline of its own when the text has none; it exits 0
// unless the guest could not be reached or the file not read.
func (s *session) log(arg string) int {
	var src io.Reader = strings.NewReader(arg)
	if strings.HasPrefix(arg, "-f") {
		name := strings.TrimLeft(arg[2:], " \t")
		f, err := os.Open(name)
		if err != nil {
			s.fail("log "+arg, err, fmt.Sprintf("log -f: %v", err))
			return 1
		}
		defer f.Close()
		// Read piece by piece: the whole file in memory would let a
		// huge file or a device such as /dev/zero exhaust it.
		src = f
	}
	buf := make([]byte, logChunk)
	newline := false
	for {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			if s.exchangeLog("log "+string(buf[:n])) != 0 {
				return 1
			}
			newline = buf[n-1] == '\n'
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			s.fail("log "+arg, err, fmt.Sprintf("log %s: %v", arg, err))
			return 1
		}
	}
	if !newline {
		if s.exchangeLog("log \n") != 0 {
			return 1
		}
	}
	return 0
}

func (s *session) exchangeLog(command string) int {
	r := s.exchange(command)
	if r == nil {
		return 1
	}
	s.printReply(command, r, "")
	return 0
}

// interrupt sends SIGINT to the guest's kernel process, whose pid the
// guest wrote beside its socket.
func (s *session) interrupt() int {
	pid, err := s.res.PID()
	if err != nil {
		return s.local("int", "Cannot determine the PID of your UML session, not sending signal.\n")
	}
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		s.fail("int", err, fmt.Sprintf("int: SIGINT to pid %d: %v", pid, err))
		return 1
	}
	if s.json {
		// The C client prints nothing; --json owes one object per command.
		s.printJSON(result{UMID: s.res.Name, Command: "int", OK: true})
	}
	return 0
}

// fixFilenames makes the file names in `config ubdN...=COW,BACKING`
// absolute, as the C client does: the guest kernel resolves them from its
// own working directory, not the user's. Names it cannot resolve are sent
// as they are.
func fixFilenames(line string, warn interface{ Write([]byte) (int, error) }) string {
	rest, ok := strings.CutPrefix(line, "config")
	if !ok {
		return line
	}
	rest = strings.TrimLeft(rest, " \t\n\r\v\f")
	if !strings.HasPrefix(rest, "ubd") {
		return line
	}
	eq := strings.IndexByte(line, '=')
	if eq < 0 {
		return line
	}
	files := strings.SplitN(line[eq+1:], ",", 2)
	for i, f := range files {
		abs, err := cow.AbsBacking(f)
		if err != nil {
			fmt.Fprintf(warn, "uml_mconsole: %s: cannot make the file name absolute: %v\n", f, err)
			continue
		}
		files[i] = abs
	}
	return line[:eq+1] + strings.Join(files, ",")
}
