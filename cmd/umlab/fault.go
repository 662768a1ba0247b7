package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/umlutils/umlutils/lab"
)

const faultUsage = `usage: umlab fault [-d DIR] WHAT ...
  link MACHINE IFACE down|up|clear|loss PCT [in]|delay MS [JITTER_MS] [in]
  port DOMAIN PORT   down|up|clear|loss PCT [in]|delay MS [JITTER_MS] [in]
  freeze|thaw DOMAIN|CABLE      SIGSTOP/SIGCONT the domain's switch or the cable
  cut|heal CABLE                unplug a serial cable (bytes are lost) or plug it back
  stop|go MACHINE               pause or resume a whole guest (mconsole stop/go)
  crash MACHINE                 kill a guest at once, keeping its disk`

func (c *cli) fault(ctx context.Context, args []string) error {
	fs, err := c.flags(args)
	if err != nil {
		return err
	}
	w := append(fs.rest, fs.dash...)
	bad := usageError{errors.New(faultUsage)}
	if len(w) < 2 {
		return bad
	}
	r, err := c.open(fs)
	if err != nil {
		return err
	}
	switch w[0] {
	case "link":
		if len(w) < 4 {
			return bad
		}
		return r.SetLinkFault(ctx, w[1], w[2], lab.LinkFault(strings.Join(w[3:], " ")))
	case "port":
		if len(w) < 4 {
			return bad
		}
		port, err := strconv.Atoi(w[2])
		if err != nil {
			return bad
		}
		return r.PortFault(ctx, w[1], port, lab.LinkFault(strings.Join(w[3:], " ")))
	case "freeze", "thaw":
		if len(w) != 2 {
			return bad
		}
		return r.Freeze(w[1], w[0] == "freeze")
	case "cut", "heal":
		if len(w) != 2 {
			return bad
		}
		return r.CutCable(w[1], w[0] == "cut")
	case "stop", "go":
		if len(w) != 2 {
			return bad
		}
		return r.Pause(ctx, w[1], w[0] == "stop")
	case "crash":
		if len(w) != 2 {
			return bad
		}
		return r.Crash(ctx, lab.StopOptions{Machines: w[1:]})
	}
	return bad
}

func (c *cli) snapshot(ctx context.Context, args []string) error {
	fs, err := c.flags(args)
	if err != nil {
		return err
	}
	bad := usageError{errors.New("usage: umlab snapshot [-d DIR] save|restore|delete NAME | list")}
	if len(fs.rest) == 0 {
		return bad
	}
	r, err := c.open(fs)
	if err != nil {
		return err
	}
	if fs.rest[0] == "list" && len(fs.rest) == 1 {
		list, err := r.Snapshots()
		if err != nil {
			return err
		}
		for _, s := range list {
			mode := "halted"
			if s.Live {
				mode = "live"
			}
			fmt.Fprintf(c.stdout, "%s\t%s\t%s\t%d files\t%.1f MB\n", s.Name, s.Created.Local().Format("2006-01-02 15:04:05"), mode, len(s.Files), float64(s.Bytes)/1e6)
		}
		return nil
	}
	if len(fs.rest) != 2 {
		return bad
	}
	name := fs.rest[1]
	switch fs.rest[0] {
	case "save":
		info, err := r.SnapshotSave(ctx, name)
		if err != nil {
			return err
		}
		if isTerminal(c.stdout) {
			fmt.Fprintf(c.stdout, "saved %s: %d files, %.1f MB\n", name, len(info.Files), float64(info.Bytes)/1e6)
		}
		return nil
	case "restore":
		return r.SnapshotRestore(ctx, name)
	case "delete":
		return r.SnapshotDelete(name)
	}
	return bad
}

func (c *cli) commit(ctx context.Context, args []string) error {
	fs, err := c.flags(args)
	if err != nil {
		return err
	}
	if len(fs.rest) != 2 {
		return usageError{errors.New("usage: umlab commit [-d DIR] MACHINE IMAGE")}
	}
	r, err := c.open(fs)
	if err != nil {
		return err
	}
	return r.Commit(ctx, fs.rest[0], fs.rest[1])
}
