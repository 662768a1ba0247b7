package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LinkFault is a fault on one machine interface's switch port, in the
// switch's management words: "down", "up", "loss 20", "loss 5 in",
// "delay 100 10", "delay 50 0 in", "clear".
type LinkFault string

// checkFault validates a fault's words as the switch will read them.
func checkFault(f LinkFault) error {
	w := strings.Fields(string(f))
	if len(w) == 0 {
		return fmt.Errorf("no fault given")
	}
	num := func(s string) bool { _, err := strconv.ParseFloat(s, 64); return err == nil }
	in := len(w) > 1 && w[len(w)-1] == "in"
	args := w[1:]
	if in {
		args = args[:len(args)-1]
	}
	switch w[0] {
	case "down", "up", "clear":
		if len(w) == 1 {
			return nil
		}
	case "loss":
		if len(args) == 1 && num(args[0]) {
			return nil
		}
	case "delay":
		if (len(args) == 1 || len(args) == 2) && num(args[0]) && (len(args) == 1 || num(args[1])) {
			return nil
		}
	}
	return fmt.Errorf("fault %q: want down, up, clear, loss PCT [in] or delay MS [JITTER_MS] [in]", string(f))
}

// portOf finds the switch port of a machine's interface: the port on
// which the domain's switch learned the interface's MAC address.
func (r *Runner) portOf(ctx context.Context, state *State, machine, iface string) (*DomainState, int, error) {
	ms, err := liveMachine(state, machine)
	if err != nil {
		return nil, 0, err
	}
	for _, ifc := range ms.Interfaces {
		if ifc.Name != iface {
			continue
		}
		d := state.Domains[ifc.Domain]
		if d == nil || !d.Proc.Alive() {
			return nil, 0, fmt.Errorf("domain %s has no running switch", ifc.Domain)
		}
		var port int
		for try := 0; ; try++ {
			lines, err := SwitchCommand(ctx, d.Mgmt, "macs json")
			if err != nil {
				return nil, 0, fmt.Errorf("domain %s: %w", ifc.Domain, err)
			}
			var macs []struct {
				MAC  string `json:"mac"`
				Port int    `json:"port"`
			}
			json.Unmarshal([]byte(strings.Join(lines, "")), &macs)
			for _, m := range macs {
				if strings.EqualFold(m.MAC, ifc.MAC) {
					port = m.Port
				}
			}
			if port > 0 {
				return d, port, nil
			}
			if try >= 20 {
				return nil, 0, fmt.Errorf("%s.%s: the switch of %s has not seen it send yet (is the interface up?)", machine, iface, ifc.Domain)
			}
			// A guest whose interface is up sends at once (IPv6 DAD, ARP);
			// give a guest that just started a moment.
			if err := ctxSleep(ctx, 250*time.Millisecond); err != nil {
				return nil, 0, err
			}
		}
	}
	return nil, 0, fmt.Errorf("%s has no interface %s", machine, iface)
}

// SetLinkFault applies a fault to a machine interface's port and keeps it
// in the lab's state, so that it is applied again when the machine is
// started again ("clear" forgets the interface's faults, "up" its down).
func (r *Runner) SetLinkFault(ctx context.Context, machine, iface string, f LinkFault) error {
	if err := checkFault(f); err != nil {
		return err
	}
	state, err := r.rt.LockedState()
	if err != nil {
		return err
	}
	defer r.rt.Unlock()
	d, port, err := r.portOf(ctx, state, machine, iface)
	if err != nil {
		return err
	}
	if _, err := SwitchCommand(ctx, d.Mgmt, fmt.Sprintf("port %d %s", port, f)); err != nil {
		return fmt.Errorf("domain %s port %d: %w", d.Name, port, err)
	}
	key := machine + "." + iface
	state.Faults[key] = mergeFault(state.Faults[key], f)
	if len(state.Faults[key]) == 0 {
		delete(state.Faults, key)
	}
	return r.rt.Save(state)
}

// mergeFault updates the list of fault commands in force on one port.
func mergeFault(cur []string, f LinkFault) []string {
	w := strings.Fields(string(f))
	kind := w[0]
	if len(w) > 1 && w[len(w)-1] == "in" {
		kind += " in"
	}
	var out []string
	for _, c := range cur {
		cw := strings.Fields(c)
		ck := cw[0]
		if len(cw) > 1 && cw[len(cw)-1] == "in" {
			ck += " in"
		}
		if ck == kind || (kind == "up" && ck == "down") || kind == "clear" {
			continue
		}
		out = append(out, c)
	}
	if kind != "up" && kind != "clear" {
		out = append(out, strings.Join(w, " "))
	}
	return out
}

// PortFault applies a fault to a switch port given by number (as the
// switch and `umlab info` number them); it is not kept across restarts.
func (r *Runner) PortFault(ctx context.Context, domain string, port int, f LinkFault) error {
	if err := checkFault(f); err != nil {
		return err
	}
	state, err := r.rt.Load()
	if err != nil {
		return err
	}
	d := state.Domains[domain]
	if d == nil || !d.Proc.Alive() {
		return fmt.Errorf("domain %s has no running switch", domain)
	}
	_, err = SwitchCommand(ctx, d.Mgmt, fmt.Sprintf("port %d %s", port, f))
	return err
}

// reapplyFaults applies a machine's kept faults after it started.
func (r *Runner) reapplyFaults(ctx context.Context, state *State, machine string) error {
	keys := make([]string, 0)
	for k := range state.Faults {
		if strings.HasPrefix(k, machine+".") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		iface := strings.TrimPrefix(k, machine+".")
		d, port, err := r.portOf(ctx, state, machine, iface)
		if err != nil {
			return err
		}
		for _, c := range state.Faults[k] {
			if _, err := SwitchCommand(ctx, d.Mgmt, fmt.Sprintf("port %d %s", port, c)); err != nil {
				return fmt.Errorf("%s: reapplying %q: %w", k, c, err)
			}
		}
	}
	return nil
}

// Freeze stops (on) or continues a domain's switch or a serial cable's
// bridge with SIGSTOP and SIGCONT, as the seed's lessons freeze a switch:
// frames and bytes wait in the kernel's queues (some are lost) and flow
// again on thaw.
func (r *Runner) Freeze(name string, on bool) error {
	state, err := r.rt.Load()
	if err != nil {
		return err
	}
	sig := syscall.SIGCONT
	if on {
		sig = syscall.SIGSTOP
	}
	if d := state.Domains[name]; d != nil && d.Proc.Alive() {
		return d.Proc.Signal(sig)
	}
	if c := state.Cables[name]; c != nil && c.Proc.Alive() {
		return c.Proc.Signal(sig)
	}
	return fmt.Errorf("%s: no running collision domain or serial cable of that name", name)
}

// CutCable cuts (on) or heals a serial cable: bytes sent while it is cut
// are dropped (and logged), as an unplugged cable loses them.
func (r *Runner) CutCable(name string, on bool) error {
	state, err := r.rt.LockedState()
	if err != nil {
		return err
	}
	defer r.rt.Unlock()
	c := state.Cables[name]
	if c == nil || !c.Proc.Alive() {
		return fmt.Errorf("%s: no running serial cable of that name", name)
	}
	if c.Cut == on {
		return nil
	}
	// ptybridge toggles its cut on each SIGUSR1.
	if err := c.Proc.Signal(syscall.SIGUSR1); err != nil {
		return err
	}
	c.Cut = on
	return r.rt.Save(state)
}

// Pause stops (on) or resumes a machine through its management console
// (mconsole stop and go): the whole guest freezes, its timers included.
func (r *Runner) Pause(ctx context.Context, machine string, on bool) error {
	if err := r.rt.Lock(); err != nil {
		return err
	}
	defer r.rt.Unlock()
	mc, _, err := r.Console(machine)
	if err != nil {
		return err
	}
	defer mc.Close()
	cmd := "go"
	if on {
		cmd = "stop"
	}
	rep, err := mc.Command(ctx, cmd)
	if err != nil {
		return err
	}
	if !rep.OK() && !(on && strings.Contains(rep.Text, "Already")) {
		return fmt.Errorf("%s: mconsole %s: %s", machine, cmd, rep.Text)
	}
	state, err := r.rt.Load()
	if err != nil {
		return err
	}
	if ms := state.Machines[machine]; ms != nil {
		ms.Paused = on
	}
	return r.rt.Save(state)
}
