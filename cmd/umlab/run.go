package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/umlutils/umlutils/lab"
	"golang.org/x/sys/unix"
)

const usage = `usage: umlab COMMAND [-d DIR] [OPTIONS] [MACHINE...]
Run Netkit and Kathará lab directories on User-Mode Linux guests.
Every command works on the lab in DIR (default: the current directory).

  start [-p N] [-f|--fast] [--switch] [-t SECONDS] [MACHINE...]
                         boot the lab (or the named machines), wait for their startup files
  exec MACHINE [--] CMD...   run CMD as root in a running machine; exits with its status
  connect MACHINE        a root shell on the machine in this terminal (Ctrl-] leaves)
  halt [-r] [-t SECONDS] [MACHINE...]   clean shutdown, disks kept (-r removes them)
  crash [-F|--keep-disks] [MACHINE...]  stop at once; disks removed unless -F
  clean                  remove everything the lab left (processes, disks, sockets, logs)
  logs [-f] [--startup] MACHINE   the machine's console log (--startup: its startup log)
  info [--json|--dot]    machines, collision domains and their switch ports
  list [--json]          every running lab of this user
  dump DOMAIN [-w FILE]  the domain's frames as pcap, on stdout or to FILE
  image build|list       the root image labs boot (built on first use)
  fault link|port|freeze|thaw|cut|heal|stop|go|crash ...   inject faults (umlab fault -h)
  snapshot save|list|restore|delete [NAME]   the lab's disks, saved and rolled back
  commit MACHINE IMAGE   fold a machine's disk into a new image file

Netkit aliases: lstart, lhalt, lcrash, lclean, linfo. See umlab(1).
`

// run is umlab's main: name is the program's name (aliases select a
// command), args its arguments.
func run(name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := ""
	switch filepath.Base(name) {
	case "lstart":
		cmd = "start"
	case "lhalt":
		cmd = "halt"
	case "lcrash":
		cmd = "crash"
	case "lclean":
		cmd = "clean"
	case "linfo":
		cmd = "info"
	default:
		// `umlab -d DIR start` as well as `umlab start -d DIR`.
		var dir []string
		if len(args) >= 2 && (args[0] == "-d" || args[0] == "--dir") {
			dir, args = args[:2], args[2:]
		}
		if len(args) == 0 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		cmd, args = args[0], append(dir, args[1:]...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	var err error
	switch cmd {
	case "start":
		err = c.start(ctx, args)
	case "exec":
		return c.exec(ctx, args)
	case "connect":
		err = c.connect(ctx, args)
	case "halt":
		err = c.halt(ctx, args)
	case "crash":
		err = c.crash(ctx, args)
	case "clean":
		err = c.clean(ctx, args)
	case "logs":
		err = c.logs(ctx, args)
	case "info":
		err = c.info(ctx, args)
	case "list":
		err = c.list(args)
	case "dump":
		err = c.dump(ctx, args)
	case "image":
		err = c.image(ctx, args)
	case "fault":
		err = c.fault(ctx, args)
	case "snapshot":
		err = c.snapshot(ctx, args)
	case "commit":
		err = c.commit(ctx, args)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "umlab: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "umlab %s: %v\n", cmd, err)
			return 2
		}
		fmt.Fprintf(stderr, "umlab %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

type usageError struct{ error }

type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

var dirFlag = flagSpec{short: "d", long: "dir", value: true}

func (c *cli) flags(args []string, specs ...flagSpec) (*flagSet, error) {
	fs, err := parseFlags(args, append(specs, dirFlag)...)
	if err != nil {
		return nil, usageError{err}
	}
	return fs, nil
}

// flagsAndLab parses a command's options and loads its lab.
func (c *cli) flagsAndLab(args []string, specs ...flagSpec) (*flagSet, *lab.Runner, error) {
	fs, err := c.flags(args, specs...)
	if err != nil {
		return nil, nil, err
	}
	r, err := c.open(fs)
	return fs, r, err
}

// open loads the lab and prints its warnings.
func (c *cli) open(fs *flagSet) (*lab.Runner, error) {
	r, err := lab.Open(fs.str("dir", "."))
	if err != nil {
		return nil, err
	}
	for _, w := range r.Lab.Warnings {
		fmt.Fprintf(c.stderr, "umlab: %s: %s\n", r.Lab.Dir, w)
	}
	r.Warn = c.stderr
	r.Out, r.Terminal = c.stdout, isTerminal(c.stdout)
	r.Images.Progress, r.Images.Terminal = c.stderr, isTerminal(c.stderr)
	return r, nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func (c *cli) start(ctx context.Context, args []string) error {
	fs, r, err := c.flagsAndLab(args,
		flagSpec{short: "p", long: "parallel", value: true, optional: true},
		flagSpec{short: "f", long: "fast"},
		flagSpec{short: "s", long: "sequential"},
		flagSpec{long: "switch"},
		flagSpec{short: "t", long: "timeout", value: true},
		flagSpec{short: "o", long: "pass", value: true},
		flagSpec{short: "v", long: "verbose"},
		flagSpec{short: "F", long: "force"},
	)
	if err != nil {
		return err
	}
	if fs.has("pass") {
		fmt.Fprintf(c.stderr, "umlab: -o %s: per-machine vstart options are not supported; use lab.conf options\n", fs.str("pass", ""))
	}
	opts := lab.StartOptions{Machines: fs.rest, Fast: fs.has("fast"), Switch: fs.has("switch")}
	if opts.Parallel, err = fs.num("parallel", 0); err != nil {
		return usageError{err}
	}
	if fs.has("sequential") {
		opts.Parallel = 1
	}
	if opts.Timeout, err = fs.duration("timeout", 0); err != nil {
		return usageError{err}
	}
	t0 := time.Now()
	err = r.Start(ctx, opts)
	var merrs []*lab.MachineError
	for _, e := range flatten(err) {
		var me *lab.MachineError
		if errors.As(e, &me) {
			merrs = append(merrs, me)
		}
	}
	if len(merrs) > 0 {
		for _, me := range merrs {
			fmt.Fprintf(c.stderr, "umlab start: %s\n", me)
			if me.Tail != "" {
				fmt.Fprintf(c.stderr, "  --- end of %s's log ---\n%s\n", me.Machine, indent(me.Tail))
			}
		}
		return fmt.Errorf("%d of the machines failed; the others keep running", len(merrs))
	}
	if err != nil {
		return err
	}
	if isTerminal(c.stdout) {
		fmt.Fprintf(c.stdout, "lab %s started in %.1fs\n", r.Lab.Dir, time.Since(t0).Seconds())
	}
	return nil
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// exec's options come before the machine's name; every word after the
// name is the command's, so `umlab exec r1 ip -4 route` needs no "--".
func (c *cli) exec(ctx context.Context, args []string) int {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		if args[i] == "-d" || args[i] == "--dir" {
			i++
		}
		i++
	}
	fs, err := c.flags(args[:min(i, len(args))])
	if err == nil && (i >= len(args) || args[i] == "--") {
		err = usageError{errors.New("usage: umlab exec [-d DIR] MACHINE [--] CMD")}
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "umlab exec: %v\n", err)
		return 2
	}
	machine, argv := args[i], args[i+1:]
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		fmt.Fprintf(c.stderr, "umlab exec: no command given\n")
		return 2
	}
	// umlab's own failures exit 255, as ssh's do, so that they are told
	// apart from the command's statuses.
	r, err := c.open(fs)
	if err != nil {
		fmt.Fprintf(c.stderr, "umlab exec: %v\n", err)
		return 255
	}
	if r.Lab.Machine(machine) == nil {
		fmt.Fprintf(c.stderr, "umlab exec: %s: no such machine in %s\n", machine, r.Lab.Dir)
		return 255
	}
	var in io.Reader
	if f, ok := c.stdin.(*os.File); !ok || !isTerminal(f) {
		in = c.stdin
	}
	code, err := r.Exec(ctx, machine, argv, in, c.stdout, c.stderr)
	if err != nil {
		fmt.Fprintf(c.stderr, "umlab exec: %v\n", err)
		if code > 0 {
			return code
		}
		return 255
	}
	return code
}

func (c *cli) halt(ctx context.Context, args []string) error {
	fs, r, err := c.flagsAndLab(args,
		flagSpec{short: "r", long: "remove-disks"},
		flagSpec{short: "t", long: "timeout", value: true},
		flagSpec{short: "q", long: "quick"},
	)
	if err != nil {
		return err
	}
	opts := lab.StopOptions{Machines: fs.rest, RemoveDisks: fs.has("remove-disks")}
	if opts.Timeout, err = fs.duration("timeout", 0); err != nil {
		return usageError{err}
	}
	return r.Halt(ctx, opts)
}

func (c *cli) crash(ctx context.Context, args []string) error {
	fs, r, err := c.flagsAndLab(args,
		flagSpec{short: "F", long: "keep-disks"},
		flagSpec{short: "q", long: "quick"},
	)
	if err != nil {
		return err
	}
	return r.Crash(ctx, lab.StopOptions{Machines: fs.rest, RemoveDisks: !fs.has("keep-disks")})
}

func (c *cli) clean(ctx context.Context, args []string) error {
	fs, err := c.flags(args)
	if err != nil {
		return err
	}
	if len(fs.rest) > 0 {
		return usageError{errors.New("clean takes no machine names: it removes the whole lab's leftovers")}
	}
	r, err := c.open(fs)
	if err != nil {
		return err
	}
	return r.Clean(ctx)
}

func (c *cli) logs(ctx context.Context, args []string) error {
	fs, err := c.flags(args, flagSpec{short: "f", long: "follow"}, flagSpec{long: "startup"})
	if err != nil {
		return err
	}
	if len(fs.rest) != 1 {
		return usageError{errors.New("usage: umlab logs [-d DIR] [-f] [--startup] MACHINE")}
	}
	r, err := c.open(fs)
	if err != nil {
		return err
	}
	machine := fs.rest[0]
	if r.Lab.Machine(machine) == nil {
		return fmt.Errorf("%s: no such machine in %s", machine, r.Lab.Dir)
	}
	if fs.has("startup") {
		argv := []string{"cat", "/var/log/umlab/startup.log"}
		if fs.has("follow") {
			argv = []string{"tail", "-n", "+1", "-f", "/var/log/umlab/startup.log"}
		}
		code, err := r.Exec(ctx, machine, argv, nil, c.stdout, c.stderr)
		if err == nil && code != 0 {
			err = fmt.Errorf("%s: no startup log yet", machine)
		}
		return err
	}
	return r.Logs(ctx, machine, fs.has("follow"), c.stdout)
}

func (c *cli) info(ctx context.Context, args []string) error {
	fs, r, err := c.flagsAndLab(args, flagSpec{long: "json"}, flagSpec{long: "dot"})
	if err != nil {
		return err
	}
	info, err := r.Info(ctx)
	if err != nil {
		return err
	}
	switch {
	case fs.has("json"):
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	case fs.has("dot"):
		_, err := io.WriteString(c.stdout, info.Dot())
		return err
	}
	return info.WriteText(c.stdout)
}

func (c *cli) list(args []string) error {
	fs, err := c.flags(args, flagSpec{long: "json"})
	if err != nil {
		return err
	}
	labs, err := lab.Labs()
	if err != nil {
		return err
	}
	if fs.has("json") {
		if labs == nil {
			labs = []lab.LabInfo{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(labs)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAB\tRUNNING\tSWITCHES\tMACHINES")
	for _, l := range labs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", l.Dir, len(l.Running), l.Switches, strings.Join(l.Running, " "))
	}
	return tw.Flush()
}
