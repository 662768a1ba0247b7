package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// umlab's lab.conf extensions (umlab(1), "Extensions"):
//
//	one[ssl1]=cable1        serial line 1 of one is an end of the serial
//	two[ssl1]=cable1        cable cable1 (a ptybridge); two ends per cable
//	one[ubd1]=shared.disk   disk 1 of one is the plain file shared.disk in the
//	two[ubd1]=shared.disk   lab directory, attached shared (UML's ubdNc=):
//	                        created and formatted ext4 on first use, 256 MiB
//	                        unless the value ends in :SIZE (shared.disk:1G);
//	                        :raw leaves a new file unformatted.
func init() {
	RegisterOption(OptionSpec{Name: "ssl#", Apply: func(_ Format, _ *Machine, v string) error {
		if checkName(v) != "" || strings.ContainsAny(v, "/.") {
			return fmt.Errorf("serial cable name %q: use letters, digits, - and _", v)
		}
		return nil
	}})
	RegisterOption(OptionSpec{Name: "ubd#", Apply: func(_ Format, _ *Machine, v string) error {
		_, _, _, err := parseDiskValue(v)
		return err
	}})
}

// Serial lines and disks a lab may use: the agent has ttyS60 and up, the
// root disk is ubd0, the config and side disks ubd6 and ubd7.
const (
	maxLabSerial = 59
	maxLabDisk   = 5
)

// parseDiskValue reads FILE[:SIZE|:raw].
func parseDiskValue(v string) (file string, size int64, raw bool, err error) {
	file, size = v, 256<<20
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		file = v[:i]
		switch arg := v[i+1:]; {
		case arg == "raw":
			raw = true
		default:
			mb, perr := parseMem(arg)
			if perr != nil || mb < 8 {
				return "", 0, false, fmt.Errorf("disk %q: size %q: want e.g. 256M or 1G (at least 8M)", v, arg)
			}
			size = int64(mb) << 20
		}
	}
	if file == "" || strings.ContainsAny(file, ",\n") {
		return "", 0, false, fmt.Errorf("disk %q: want FILE[:SIZE|:raw]", v)
	}
	return file, size, raw, nil
}

// optionIndex splits "ssl12" into ("ssl", 12).
func optionIndex(name, prefix string) (int, bool) {
	s, ok := strings.CutPrefix(name, prefix)
	if !ok || s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// cableEnd is one end of a serial cable.
type cableEnd struct {
	machine string
	line    int
	opt     int // lab.conf line
}

// cables collects the serial cables the selected machines use.
func (r *Runner) cables(sel []*Machine) (map[string][]cableEnd, error) {
	out := map[string][]cableEnd{}
	for _, m := range r.Lab.Machines {
		for _, o := range m.Options {
			n, ok := optionIndex(o.Name, "ssl")
			if !ok {
				continue
			}
			if n < 0 || n > maxLabSerial {
				return nil, fmt.Errorf("lab.conf:%d: %s[%s]: serial lines 0 to %d are the lab's (umlab's agent uses the ones above)", o.Line, m.Name, o.Name, maxLabSerial)
			}
			out[o.Value] = append(out[o.Value], cableEnd{machine: m.Name, line: n, opt: o.Line})
		}
	}
	for name, ends := range out {
		if len(ends) != 2 {
			return nil, fmt.Errorf("lab.conf:%d: serial cable %s has %d ends; a cable joins two machines", ends[0].opt, name, len(ends))
		}
	}
	return out, nil
}

// startCable starts a ptybridge for a cable, detached, logging the cable's
// traffic, and returns its two pty paths.
func (r *Runner) startCable(ctx context.Context, name string) (*CableState, error) {
	prog, err := helperProgram("ptybridge", "UMLAB_PTYBRIDGE")
	if err != nil {
		return nil, err
	}
	c := &CableState{Name: name, Log: r.rt.Path("cable-" + name + ".log")}
	paths := r.rt.Path("cable-" + name + ".paths")
	out, err := os.OpenFile(paths, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(prog, "-tee", c.Log, "-new")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cable %s: %w", name, err)
	}
	go cmd.Wait()
	c.Proc, _ = procOf(cmd.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(paths)
		if f := strings.Fields(string(b)); len(f) >= 2 && strings.HasPrefix(f[0], "/dev/") {
			c.A, c.B = f[0], f[1]
			return c, nil
		}
		if !c.Proc.Alive() || time.Now().After(deadline) || ctx.Err() != nil {
			c.Proc.KillAll(time.Second)
			return nil, fmt.Errorf("cable %s: ptybridge did not start: %s", name, strings.TrimSpace(string(b)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// helperProgram finds one of the project's tools: env, beside umlab, PATH.
func helperProgram(name, env string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), name); fileExists(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found beside umlab nor on PATH", name)
	}
	return p, nil
}

// diskArgs returns the kernel arguments for a machine's lab disks
// ([ubdN]=FILE), creating and formatting each file on first use.
func (r *Runner) diskArgs(ctx context.Context, m *Machine) ([]string, error) {
	var args []string
	for _, o := range m.Options {
		n, ok := optionIndex(o.Name, "ubd")
		if !ok {
			continue
		}
		if n < 1 || n > maxLabDisk {
			return nil, fmt.Errorf("lab.conf:%d: %s[%s]: disks 1 to %d are the lab's (0 is the machine's root, 6 and 7 umlab's)", o.Line, m.Name, o.Name, maxLabDisk)
		}
		file, size, raw, err := parseDiskValue(o.Value)
		if err != nil {
			return nil, fmt.Errorf("lab.conf:%d: %s[%s]: %w", o.Line, m.Name, o.Name, err)
		}
		path := file
		if !filepath.IsAbs(path) {
			path = filepath.Join(r.Lab.Dir, file)
		}
		if err := makeSharedDisk(ctx, path, size, raw); err != nil {
			return nil, fmt.Errorf("lab.conf:%d: %s[%s]: %w", o.Line, m.Name, o.Name, err)
		}
		// Through the runtime directory's link when inside the lab: the
		// command line splits on commas and colons.
		arg := path
		if rel, err := filepath.Rel(r.Lab.Dir, path); err == nil && !strings.HasPrefix(rel, "..") {
			arg = r.rt.Path("lab", rel)
		}
		if strings.ContainsAny(arg, ",: ") {
			return nil, fmt.Errorf("lab.conf:%d: %s[%s]: the path %s holds a comma, colon or space, which a UML command line cannot carry", o.Line, m.Name, o.Name, arg)
		}
		args = append(args, fmt.Sprintf("ubd%dc=%s", n, arg))
	}
	return args, nil
}

// makeSharedDisk creates a lab disk: sparse, formatted ext4 unless raw.
// An existing file is used as it is.
func makeSharedDisk(ctx context.Context, path string, size int64, raw bool) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	f.Close()
	if err == nil && !raw {
		if msg, e := exec.CommandContext(ctx, sbin("mkfs.ext4"), "-q", "-F", "-L", strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), tmp).CombinedOutput(); e != nil {
			err = fmt.Errorf("mkfs.ext4: %v: %s", e, msg)
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// cableArgs returns the kernel arguments attaching a machine's serial
// lines to their cables (the cable's first end, in lab order, gets pty A).
func cableArgs(m *Machine, cables map[string][]cableEnd, state *State) []string {
	var args []string
	names := make([]string, 0, len(cables))
	for n := range cables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		ends := cables[name]
		c := state.Cables[name]
		if c == nil {
			continue
		}
		for i, e := range ends {
			if e.machine != m.Name {
				continue
			}
			p := c.A
			if i == 1 {
				p = c.B
			}
			args = append(args, fmt.Sprintf("ssl%d=tty:%s", e.line, p))
		}
	}
	return args
}
