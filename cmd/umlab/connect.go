package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/umlutils/umlutils/lab"
	"github.com/umlutils/umlutils/lab/agent"
	"github.com/umlutils/umlutils/ptybridge"
	"golang.org/x/sys/unix"
)

// detachKey leaves a connect session: Ctrl-], as telnet has it.
const detachKey = 0x1d

func (c *cli) connect(ctx context.Context, args []string) error {
	fs, err := c.flags(args)
	if err != nil {
		return err
	}
	if len(fs.rest) != 1 {
		return usageError{errors.New("usage: umlab connect [-d DIR] MACHINE")}
	}
	in, ok := c.stdin.(*os.File)
	if !ok || !isTerminal(in) {
		return errors.New("connect needs a terminal; use `umlab exec MACHINE -- CMD` from scripts")
	}
	r, err := c.open(fs)
	if err != nil {
		return err
	}
	machine := fs.rest[0]
	if r.Lab.Machine(machine) == nil {
		return fmt.Errorf("%s: no such machine in %s", machine, r.Lab.Dir)
	}
	s, err := r.Agent(ctx, machine)
	if err != nil {
		return err
	}
	defer s.Close()
	req := agent.ExecRequest{Argv: []string{"/bin/bash", "-l"}, TTY: true, Env: []string{"TERM=" + os.Getenv("TERM")}}
	if ws, err := unix.IoctlGetWinsize(int(in.Fd()), unix.TIOCGWINSZ); err == nil {
		req.Rows, req.Cols = ws.Row, ws.Col
	}
	old, err := unix.IoctlGetTermios(int(in.Fd()), unix.TCGETS)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "Connected to %s (Ctrl-] leaves).\r\n", machine)
	if err := ptybridge.MakeRaw(in); err != nil {
		return err
	}
	defer unix.IoctlSetTermios(int(in.Fd()), unix.TCSETS, old)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			if ws, err := unix.IoctlGetWinsize(int(in.Fd()), unix.TIOCGWINSZ); err == nil {
				s.Resize(ws.Row, ws.Col)
			}
		}
	}()
	code, err := s.Run(ctx, req, &detachReader{r: in, cancel: cancel}, c.stdout, c.stdout)
	unix.IoctlSetTermios(int(in.Fd()), unix.TCSETS, old)
	if ctx.Err() != nil {
		s.Signal(syscall.SIGHUP)
		fmt.Fprintf(c.stderr, "\nLeft %s.\n", machine)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "\nThe shell on %s exited (status %d).\n", machine, code)
	return nil
}

// detachReader passes the terminal's input on until the detach key.
type detachReader struct {
	r      io.Reader
	cancel func()
}

func (d *detachReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == detachKey {
			d.cancel()
			return i, io.EOF
		}
	}
	return n, err
}

func (c *cli) dump(ctx context.Context, args []string) error {
	fs, err := c.flags(args, flagSpec{short: "w", long: "write", value: true})
	if err != nil {
		return err
	}
	if len(fs.rest) != 1 {
		return usageError{errors.New("usage: umlab dump [-d DIR] DOMAIN [-w FILE]")}
	}
	r, err := c.open(fs)
	if err != nil {
		return err
	}
	var w io.Writer = c.stdout
	if path := fs.str("write", ""); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	} else if isTerminal(c.stdout) {
		return errors.New("not writing pcap to a terminal: pipe it (| tcpdump -r -) or use -w FILE")
	}
	return r.Dump(ctx, fs.rest[0], w)
}

func (c *cli) image(ctx context.Context, args []string) error {
	fs, err := c.flags(args, flagSpec{long: "profile", value: true})
	if err != nil {
		return err
	}
	imgs := &lab.Images{Dir: lab.DefaultImageDir(), Progress: c.stderr, Terminal: isTerminal(c.stderr)}
	if len(fs.rest) != 1 {
		return usageError{errors.New("usage: umlab image build [--profile NAME] | umlab image list")}
	}
	switch fs.rest[0] {
	case "build":
		path, err := imgs.Build(ctx, fs.str("profile", "default"))
		if err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, path)
		return nil
	case "list":
		list, err := imgs.List()
		if err != nil {
			return err
		}
		for _, im := range list {
			fmt.Fprintf(c.stdout, "%s\n", im.Path)
		}
		return nil
	}
	return usageError{fmt.Errorf("unknown image command %q", fs.rest[0])}
}
