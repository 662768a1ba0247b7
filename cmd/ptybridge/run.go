package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/umlutils/umlutils/ptybridge"
)

// notifySignals subscribes c to the signals ptybridge handles; tests
// replace it to send their own.
var notifySignals = func(c chan<- os.Signal) func() {
	signal.Notify(c, syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)
	return func() { signal.Stop(c) }
}

func run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ptybridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tee := fs.String("tee", "", "log both directions to `FILE` (- for standard output)")
	hex := fs.Bool("hex", false, "log bytes as hex instead of quoted text")
	newPair := fs.Bool("new", false, "allocate two ptys, print their paths and bridge them")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ptybridge [-tee FILE] [-hex] PTY_A PTY_B\n       ptybridge [-tee FILE] [-hex] -new\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *newPair && fs.NArg() != 0 || !*newPair && fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "ptybridge: %v\n", err)
		return 1
	}
	// Subscribe before anything is printed: a script that reads the paths
	// of -new and at once sends SIGUSR1 must not kill us by the signal's
	// default action.
	sigs := make(chan os.Signal, 4)
	defer notifySignals(sigs)()

	var a, b ptybridge.End
	if *newPair {
		p, err := ptybridge.NewPair()
		if err != nil {
			return fail(err)
		}
		defer p.Close()
		a, b = p.A, p.B
	} else {
		if err := ptybridge.CheckDistinct(fs.Arg(0), fs.Arg(1)); err != nil {
			return fail(err)
		}
		var err error
		if a, err = ptybridge.Open(fs.Arg(0)); err != nil {
			return fail(err)
		}
		defer a.File.Close()
		if b, err = ptybridge.Open(fs.Arg(1)); err != nil {
			return fail(err)
		}
		defer b.File.Close()
	}

	opt := ptybridge.Options{Hex: *hex}
	switch *tee {
	case "":
	case "-":
		opt.Tee = stdout
	default:
		// O_NONBLOCK: a FIFO nobody reads would block the open forever;
		// this way it fails at once (ENXIO). Regular files ignore it.
		f, err := os.OpenFile(*tee, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NONBLOCK, 0o644)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		opt.Tee = f
	}
	if *newPair {
		// Only now, with everything in place, so a script reading the
		// paths can start its guests at once.
		fmt.Fprintf(stdout, "%s\n%s\n", a.Name, b.Name)
	}

	br := ptybridge.New(a, b, opt)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				if s != syscall.SIGUSR1 {
					cancel()
					return
				}
				if br.ToggleCut() {
					fmt.Fprintln(stderr, "ptybridge: cable cut")
				} else {
					fmt.Fprintln(stderr, "ptybridge: cable healed")
				}
			}
		}
	}()
	if err := br.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}
