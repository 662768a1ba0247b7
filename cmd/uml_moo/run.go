package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/umlutils/umlutils/cow"
	"github.com/umlutils/umlutils/internal/term"
)

// usageText is the C uml_moo's, word for word (it prints the program name
// as invoked), plus a line for --force.
const usageText = `%[1]s usage:
	%[1]s [ -b <actual backing file> ] <COW file> <new backing file>
	%[1]s [ -b <actual backing file> ] -d <COW file>
Creates a new filesystem image from the COW file and its backing file.
Specifying -d will cause a destructive, in-place merge of the COW file into
its current backing file
Specifying -b overrides the backing_file specified in the COW file.  This is
needed when dealing with a COW file that was created inside a chroot jail.
Specifying --force merges even when a running UML uses the files.
%[1]s supports version 1,2 and 3 COW files.
`

// The C tool's perror prefixes, so that scripts matching them still do;
// we add the file name and a precise reason.
var opPrefix = map[cow.Op]string{
	cow.OpOpenCOW:      "COW file open",
	cow.OpReadHeader:   "Reading COW header failed",
	cow.OpStatBacking:  "Stating backing file",
	cow.OpOpenBacking:  "Opening backing file",
	cow.OpCreateOutput: "Output file open",
	cow.OpReadBitmap:   "Reading COW bitmap",
	cow.OpReadData:     "Reading data",
	cow.OpWriteData:    "Writing data",
	cow.OpSync:         "Syncing data",
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	prog := "uml_moo"
	if len(args) > 0 {
		prog, args = args[0], args[1:]
	}
	usage := func() int {
		fmt.Fprintf(stderr, usageText, prog)
		return 1
	}
	var opts cow.Options
	inPlace := false
	// Options come first, in any order; the first other word ends them
	// (so `uml_moo COW -d` names a new image "-d", as in the C tool).
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		switch a := args[0]; a {
		case "-d":
			inPlace = true
		case "-b":
			if len(args) < 2 {
				return usage()
			}
			if args[1] == "" {
				// Most likely an unset variable in a script: the C tool
				// fails to stat "", and falling back to the header's path
				// would merge into a file the user did not name.
				fmt.Fprintf(stderr, "Stating backing file: -b \"\": No such file or directory\n")
				return 1
			}
			opts.Backing = args[1]
			args = args[1:]
		case "--force":
			opts.Force = true
		case "--":
			args = args[1:]
			goto positional
		default:
			return usage()
		}
		args = args[1:]
	}
positional:
	if (inPlace && len(args) != 1) || (!inPlace && len(args) != 2) {
		return usage()
	}
	cowPath := args[0]

	// Ctrl-C, kill and a closed terminal cancel the merge so that it
	// cleans up; the exit status is then 128 + the signal's number, what
	// a shell shows for a process the signal killed.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var caught atomic.Int32
	go func() {
		select {
		case s := <-sigs:
			caught.Store(int32(s.(syscall.Signal)))
			cancel()
		case <-ctx.Done():
		}
	}()
	bar := newProgress(stderr)
	opts.Progress = bar.update

	var siblings []string
	var before time.Time // the backing file's mtime before an in-place merge
	backing := opts.Backing
	if h, err := cow.ReadHeader(cowPath); err == nil {
		if backing == "" {
			backing = h.BackingFile
		}
		if h.Broken64 {
			// The C tool's notice, on stdout as there, for scripts that
			// expect it.
			fmt.Fprintln(stdout, "read_cow_header - broken V3 file with 64-bit layout - recovering content.")
		}
	}
	if opts.Force {
		warnInUse(stderr, prog, "COW file", cowPath)
		if inPlace && backing != "" {
			warnInUse(stderr, prog, "backing file", backing)
		}
	}
	if inPlace && backing != "" {
		dirs := []string{filepath.Dir(cowPath)}
		if d := filepath.Dir(backing); d != dirs[0] {
			dirs = append(dirs, d)
		}
		siblings, _ = cow.Siblings(dirs, backing, cowPath)
		if st, err := os.Stat(backing); err == nil {
			before = st.ModTime()
		}
	}

	var err error
	if inPlace {
		err = cow.MergeInPlace(ctx, cowPath, opts)
	} else {
		err = cow.Merge(ctx, cowPath, args[1], opts)
	}
	bar.finish()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			if inPlace {
				fmt.Fprintf(stderr, "%s: interrupted: %s is partly merged; run the same command again to finish\n", prog, backing)
			} else {
				fmt.Fprintf(stderr, "%s: interrupted: %s was not written\n", prog, args[1])
			}
			if n := caught.Load(); n != 0 {
				return 128 + int(n)
			}
			return 130
		}
		fmt.Fprintln(stderr, message(prog, err))
		var ce *cow.Error
		if inPlace && errors.As(err, &ce) && (ce.Op == cow.OpReadData || ce.Op == cow.OpWriteData || ce.Op == cow.OpSync) {
			fmt.Fprintf(stderr, "%s: %s may be partly merged; %s still matches it: run the same command again to finish\n", prog, backing, cowPath)
		}
		return 1
	}
	if st, err := os.Stat(backing); err == nil && st.ModTime().Equal(before) {
		siblings = nil // nothing was written (no dirty sector): they still match
	}
	for _, s := range siblings {
		fmt.Fprintf(stderr, "%s: warning: %s also uses backing file %s; it no longer matches the merged file (its mtime changed) and its guest will refuse it\n", prog, s, backing)
	}
	return 0
}

func warnInUse(stderr io.Writer, prog, role, path string) {
	if l, err := cow.InUse(path); err == nil && l != nil {
		fmt.Fprintf(stderr, "%s: WARNING: --force: %s %s is in use (%s); merging anyway\n", prog, role, path, l)
	}
}

// message words err like the C uml_moo where it has a message for it.
func message(prog string, err error) string {
	var mm *cow.MismatchError
	var iu *cow.InUseError
	var ce *cow.Error
	switch {
	case errors.As(err, &mm):
		what := "Size"
		if mm.Field == "mtime" {
			what = "mtime"
		}
		return fmt.Sprintf("%s mismatch (%d vs %d) of COW header vs backing file %q", what, mm.Header, mm.Actual, mm.Backing)
	case errors.As(err, &iu):
		return fmt.Sprintf("%s: %v; not merging (--force overrides)", prog, iu)
	case errors.As(err, &ce):
		if p, ok := opPrefix[ce.Op]; ok {
			return fmt.Sprintf("%s: %s: %s", p, ce.Path, ce.Reason())
		}
	}
	return fmt.Sprintf("%s: %v", prog, err)
}

// progress draws a bar on stderr when it is a terminal and the merge is
// large enough to be worth watching.
type progress struct {
	w     io.Writer
	tty   bool
	last  time.Time
	shown bool
}

const progressMin = 256 << 20

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		p.tty = term.IsTerminal(f)
	}
	return p
}

func (p *progress) update(done, total int64) {
	if !p.tty || total < progressMin {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = now
	const width = 40
	n := int(done * width / total)
	fmt.Fprintf(p.w, "\r[%s%s] %3d%% %d/%d MiB", strings.Repeat("#", n), strings.Repeat(".", width-n),
		done*100/total, done>>20, total>>20)
	p.shown = true
}

func (p *progress) finish() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
