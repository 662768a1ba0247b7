package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// SwitchProgram finds uml_switch: UMLAB_SWITCH, beside the running umlab,
// or on PATH.
func SwitchProgram() (string, error) { return helperProgram("uml_switch", "UMLAB_SWITCH") }

// maxSocketPath is the longest path a Unix socket address holds (108
// bytes with the terminating NUL).
const maxSocketPath = 107

// domainFile is the base name of a domain's files in the runtime
// directory. Domain names are safe file names (the parser refuses others);
// a long one is shortened with a hash so socket paths stay short.
func domainFile(name string) string {
	if len(name) <= 24 {
		return "d-" + name
	}
	return "d-" + name[:12] + "-" + LabID(name)
}

// startSwitch starts one uml_switch for a collision domain, detached in
// its own session, and waits until its control socket accepts.
func (r *Runner) startSwitch(ctx context.Context, name string, hub bool, vxlan string) (*DomainState, error) {
	prog, err := SwitchProgram()
	if err != nil {
		return nil, err
	}
	base := domainFile(name)
	d := &DomainState{
		Name: name, Hub: hub,
		Ctl:  r.rt.Path(base + ".ctl"),
		Bess: r.rt.Path(base + ".bess"),
		Mgmt: r.rt.Path(base + ".mgmt"),
		Log:  r.rt.Path(base + ".log"),
	}
	for _, p := range []string{d.Ctl, d.Bess, d.Mgmt} {
		if len(p) > maxSocketPath {
			return nil, fmt.Errorf("domain %s: socket path %s is longer than %d bytes; set UMLAB_RUNTIME to a shorter directory", name, p, maxSocketPath)
		}
	}
	args := []string{"-unix", d.Ctl, "-bess", d.Bess, "-mgmt", d.Mgmt}
	if hub {
		args = append(args, "-hub")
	}
	if vxlan != "" {
		args = append(args, "-vxlan", vxlan)
	}
	log, err := os.OpenFile(d.Log, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("domain %s: starting %s: %w", name, prog, err)
	}
	go cmd.Wait()
	d.Proc, _ = procOf(cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", d.Mgmt); err == nil {
			c.Close()
			if fileExists(d.Ctl) {
				return d, nil
			}
		}
		if !d.Proc.Alive() || time.Now().After(deadline) || ctx.Err() != nil {
			d.Proc.KillAll(time.Second)
			tail, _ := os.ReadFile(d.Log)
			return nil, fmt.Errorf("domain %s: uml_switch did not come up: %s", name, strings.TrimSpace(string(tail)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopSwitch ends a domain's switch (SIGTERM: it removes its sockets) and
// removes what is left.
func stopSwitch(d *DomainState) {
	if d.Proc.Alive() {
		// A frozen switch (umlab fault freeze) must run to exit cleanly.
		d.Proc.Signal(syscall.SIGCONT)
		d.Proc.Signal(syscall.SIGTERM)
		if !d.Proc.WaitGone(3 * time.Second) {
			d.Proc.KillAll(2 * time.Second)
		}
	}
	for _, p := range []string{d.Ctl, d.Bess, d.Mgmt} {
		if st, err := os.Lstat(p); err == nil && st.Mode()&os.ModeSocket != 0 {
			os.Remove(p)
		}
	}
}

// SwitchCommand sends one management command to a domain's switch and
// returns the reply lines (without the final OK).
func SwitchCommand(ctx context.Context, mgmt, command string) ([]string, error) {
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "unix", mgmt)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var out []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "OK":
			return out, nil
		case strings.HasPrefix(line, "ERR"):
			return out, fmt.Errorf("switch: %s", strings.TrimSpace(strings.TrimPrefix(line, "ERR")))
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return out, err
	}
	return out, errors.New("switch closed the connection before the reply ended")
}
