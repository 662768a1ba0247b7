package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Info is what `umlab info` shows of a lab.
type Info struct {
	Lab      string        `json:"lab"`
	ID       string        `json:"id"`
	Runtime  string        `json:"runtime"`
	Format   string        `json:"format"`
	Machines []MachineInfo `json:"machines"`
	Domains  []DomainInfo  `json:"domains"`
	Cables   []CableInfo   `json:"cables,omitempty"`
	// Faults are the link faults umlab keeps, by MACHINE.ethN.
	Faults map[string][]string `json:"faults,omitempty"`
}

// CableInfo is one serial cable.
type CableInfo struct {
	Name  string `json:"name"`
	State string `json:"state"` // running, cut, frozen, off
	PID   int    `json:"pid,omitempty"`
	A     string `json:"a"`
	B     string `json:"b"`
	Log   string `json:"log"`
}

// MachineInfo is one machine of the lab.
type MachineInfo struct {
	Name string `json:"name"`
	// State: "running", "paused" (umlab fault stop), "stopped" (SIGSTOP),
	// "dead" (its kernel exited without umlab stopping it), "off".
	State      string      `json:"state"`
	PID        int         `json:"pid,omitempty"`
	UMID       string      `json:"umid,omitempty"`
	MemMB      int         `json:"mem_mb,omitempty"`
	HostPSS    int64       `json:"host_pss_bytes,omitempty"`
	Kernel     string      `json:"kernel,omitempty"`
	Disk       string      `json:"disk,omitempty"`
	Uptime     float64     `json:"uptime_s,omitempty"`
	Interfaces []IfaceInfo `json:"interfaces"`
}

// IfaceInfo is one interface and the switch port it is attached to.
type IfaceInfo struct {
	Name   string `json:"name"`
	Domain string `json:"domain"`
	MAC    string `json:"mac"`
	Port   int    `json:"port,omitempty"` // 0: not known (the guest has sent nothing yet)
}

// DomainInfo is one collision domain.
type DomainInfo struct {
	Name    string     `json:"name"`
	State   string     `json:"state"` // running, frozen, off
	PID     int        `json:"pid,omitempty"`
	Hub     bool       `json:"hub"`
	Ctl     string     `json:"ctl,omitempty"`
	Mgmt    string     `json:"mgmt,omitempty"`
	Members []string   `json:"members"` // MACHINE.ethN
	Ports   []PortInfo `json:"ports,omitempty"`
}

// PortInfo is one switch port as the switch reports it, with the machine
// interface behind it.
type PortInfo struct {
	ID        int     `json:"id"`
	Transport string  `json:"transport"`
	Up        bool    `json:"up"`
	Member    string  `json:"member,omitempty"` // MACHINE.ethN
	RxFrames  uint64  `json:"rx_frames"`
	TxFrames  uint64  `json:"tx_frames"`
	LossOut   float64 `json:"loss_out_pct,omitempty"`
	LossIn    float64 `json:"loss_in_pct,omitempty"`
	DelayOut  float64 `json:"delay_out_ms,omitempty"`
	JitterOut float64 `json:"jitter_out_ms,omitempty"`
	DelayIn   float64 `json:"delay_in_ms,omitempty"`
	JitterIn  float64 `json:"jitter_in_ms,omitempty"`
	UMID      string  `json:"umid,omitempty"`
}

// Faults says in words which faults are in force on the port.
func (p PortInfo) Faults() string {
	var f []string
	if !p.Up {
		f = append(f, "down")
	}
	if p.LossOut > 0 {
		f = append(f, fmt.Sprintf("loss %g%%", p.LossOut))
	}
	if p.LossIn > 0 {
		f = append(f, fmt.Sprintf("loss-in %g%%", p.LossIn))
	}
	if p.DelayOut > 0 || p.JitterOut > 0 {
		f = append(f, fmt.Sprintf("delay %gms±%gms", p.DelayOut, p.JitterOut))
	}
	if p.DelayIn > 0 || p.JitterIn > 0 {
		f = append(f, fmt.Sprintf("delay-in %gms±%gms", p.DelayIn, p.JitterIn))
	}
	return strings.Join(f, ", ")
}

// Info gathers the lab's state; a frozen switch or guest does not make it
// hang (each question is bounded).
func (r *Runner) Info(ctx context.Context) (*Info, error) {
	s, err := r.rt.Load()
	if err != nil {
		return nil, err
	}
	info := &Info{Lab: r.Lab.Dir, ID: LabID(r.Lab.Dir), Runtime: r.rt.Dir, Format: r.Lab.Format.String()}
	byMAC := map[string]string{}
	byUMID := map[string]string{}
	for _, m := range r.Lab.Machines {
		mi := MachineInfo{Name: m.Name, State: "off", Interfaces: []IfaceInfo{}}
		if ms := s.Machines[m.Name]; ms != nil {
			mi.State = "dead"
			switch ms.Proc.State() {
			case "", "Z", "X":
			case "T", "t":
				mi.State = "stopped"
			default:
				mi.State = "running"
				mi.PID, mi.UMID, mi.MemMB, mi.Kernel, mi.Disk = ms.Proc.PID, ms.UMID, ms.Mem, ms.Kernel, ms.Disk
				mi.Uptime = time.Since(ms.Started).Round(time.Second).Seconds()
				mi.HostPSS = pss(ms.Proc.Members())
				if ms.Paused {
					mi.State = "paused"
				}
			}
			if mi.State == "stopped" {
				mi.PID, mi.UMID = ms.Proc.PID, ms.UMID
			}
			for _, ifc := range ms.Interfaces {
				mi.Interfaces = append(mi.Interfaces, IfaceInfo{Name: ifc.Name, Domain: ifc.Domain, MAC: ifc.MAC})
				byMAC[strings.ToLower(ifc.MAC)] = m.Name + "." + ifc.Name
			}
			byUMID[ms.UMID] = m.Name
		} else {
			for _, ifc := range m.Interfaces {
				mi.Interfaces = append(mi.Interfaces, IfaceInfo{Name: fmt.Sprintf("eth%d", ifc.Index), Domain: ifc.Domain, MAC: ifc.MAC.String()})
			}
		}
		info.Machines = append(info.Machines, mi)
	}
	portOf := map[string]int{}
	for _, d := range r.Lab.Domains {
		di := DomainInfo{Name: d.Name, State: "off", Members: []string{}}
		for _, mb := range d.Members {
			di.Members = append(di.Members, fmt.Sprintf("%s.eth%d", mb.Machine, mb.Index))
		}
		if ds := s.Domains[d.Name]; ds != nil {
			di.Hub, di.Ctl, di.Mgmt = ds.Hub, ds.Ctl, ds.Mgmt
			switch ds.Proc.State() {
			case "", "Z", "X":
			case "T", "t":
				di.State, di.PID = "frozen", ds.Proc.PID
			default:
				di.State, di.PID = "running", ds.Proc.PID
				di.Ports = r.switchPorts(ctx, ds, byMAC, byUMID)
				for _, p := range di.Ports {
					if p.Member != "" {
						portOf[p.Member] = p.ID
					}
				}
			}
		}
		info.Domains = append(info.Domains, di)
	}
	names := make([]string, 0, len(s.Cables))
	for n := range s.Cables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := s.Cables[n]
		ci := CableInfo{Name: n, State: "off", A: c.A, B: c.B, Log: c.Log}
		switch c.Proc.State() {
		case "", "Z", "X":
		case "T", "t":
			ci.State, ci.PID = "frozen", c.Proc.PID
		default:
			ci.State, ci.PID = "running", c.Proc.PID
			if c.Cut {
				ci.State = "cut"
			}
		}
		info.Cables = append(info.Cables, ci)
	}
	if len(s.Faults) > 0 {
		info.Faults = s.Faults
	}
	for i := range info.Machines {
		for j := range info.Machines[i].Interfaces {
			ifc := &info.Machines[i].Interfaces[j]
			ifc.Port = portOf[info.Machines[i].Name+"."+ifc.Name]
		}
	}
	return info, nil
}

// switchPorts asks a switch for its ports and names the interface behind
// each: by the umid the switch reports for a UML peer, else by the MACs
// it learned on the port.
func (r *Runner) switchPorts(ctx context.Context, d *DomainState, byMAC, byUMID map[string]string) []PortInfo {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	lines, err := SwitchCommand(ctx, d.Mgmt, "ports json")
	if err != nil || len(lines) == 0 {
		return nil
	}
	var ports []PortInfo
	if json.Unmarshal([]byte(strings.Join(lines, "")), &ports) != nil {
		return nil
	}
	macLines, _ := SwitchCommand(ctx, d.Mgmt, "macs json")
	var macs []struct {
		MAC  string `json:"mac"`
		Port int    `json:"port"`
	}
	json.Unmarshal([]byte(strings.Join(macLines, "")), &macs)
	for i := range ports {
		for _, m := range macs {
			if m.Port == ports[i].ID {
				if who := byMAC[strings.ToLower(m.MAC)]; who != "" {
					ports[i].Member = who
				}
			}
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].ID < ports[j].ID })
	return ports
}

// WriteText prints the info as tables.
func (info *Info) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "lab %s (%s format), runtime %s\n\n", info.Lab, info.Format, info.Runtime)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tSTATE\tPID\tUMID\tMEM\tHOST MEM\tINTERFACES")
	for _, m := range info.Machines {
		var ifs []string
		for _, i := range m.Interfaces {
			port := ""
			if i.Port > 0 {
				port = fmt.Sprintf(":%d", i.Port)
			}
			ifs = append(ifs, fmt.Sprintf("%s=%s%s", i.Name, i.Domain, port))
		}
		pid, mem, host := "-", "-", "-"
		if m.PID > 0 {
			pid = fmt.Sprint(m.PID)
		}
		if m.MemMB > 0 {
			mem = fmt.Sprintf("%dM", m.MemMB)
		}
		if m.HostPSS > 0 {
			host = fmt.Sprintf("%.0fM", float64(m.HostPSS)/(1<<20))
		}
		umid := m.UMID
		if umid == "" {
			umid = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.State, pid, umid, mem, host, strings.Join(ifs, " "))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tSWITCH\tPID\tMODE\tPORTS")
	for _, d := range info.Domains {
		mode := "switch"
		if d.Hub {
			mode = "hub"
		}
		pid := "-"
		if d.PID > 0 {
			pid = fmt.Sprint(d.PID)
		}
		var ports []string
		for _, p := range d.Ports {
			who := p.Member
			if who == "" {
				who = "?"
			}
			s := fmt.Sprintf("%d=%s", p.ID, who)
			if f := p.Faults(); f != "" {
				s += " [" + f + "]"
			}
			ports = append(ports, s)
		}
		if len(ports) == 0 {
			ports = d.Members
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Name, d.State, pid, mode, strings.Join(ports, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(info.Cables) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CABLE\tSTATE\tPID\tENDS\tLOG")
		for _, c := range info.Cables {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s %s\t%s\n", c.Name, c.State, c.PID, c.A, c.B, c.Log)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(info.Faults) > 0 {
		fmt.Fprintln(w, "\nfaults kept across restarts:")
		keys := make([]string, 0, len(info.Faults))
		for k := range info.Faults {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s: %s\n", k, strings.Join(info.Faults[k], ", "))
		}
	}
	return nil
}

// Dot returns the topology as a Graphviz graph: machines as boxes,
// collision domains as ellipses, an edge per interface.
func (info *Info) Dot() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %q {\n\tnode [fontname=\"sans\"];\n", info.Lab)
	for _, m := range info.Machines {
		fmt.Fprintf(&b, "\t%q [shape=box, label=%q];\n", "m:"+m.Name, m.Name+"\n"+m.State)
	}
	for _, d := range info.Domains {
		fmt.Fprintf(&b, "\t%q [shape=ellipse, label=%q];\n", "d:"+d.Name, d.Name)
	}
	for _, m := range info.Machines {
		for _, i := range m.Interfaces {
			label := i.Name
			if i.Port > 0 {
				label += fmt.Sprintf(" (port %d)", i.Port)
			}
			fmt.Fprintf(&b, "\t%q -- %q [label=%q];\n", "m:"+m.Name, "d:"+i.Domain, label)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// Logs copies a machine's console log (boot messages, systemd, startup
// output) to w; with follow it goes on until ctx ends or the machine stops.
func (r *Runner) Logs(ctx context.Context, machine string, follow bool, w io.Writer) error {
	path := r.rt.Path(machine + ".log")
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: no console log (never started here, or cleaned)", machine)
	}
	defer f.Close()
	s, _ := r.rt.Load()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if !follow {
			return nil
		}
		if ms := s.Machines[machine]; ms == nil || !ms.Proc.Alive() {
			io.Copy(w, f)
			return nil
		}
		if err := ctxSleep(ctx, 200*time.Millisecond); err != nil {
			return nil
		}
	}
}
