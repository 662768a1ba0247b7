//go:build linux

package vswitch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The management protocol (uml_switch -mgmt PATH): a Unix stream socket,
// one command per line; every reply is zero or more lines and then a line
// "OK" or "ERR reason". Listings come as one JSON line when the command is
// followed by the word "json". Commands:
//
//	ports [json]                      id, transport, peer, up/down, counters
//	macs [json]                       learned addresses: MAC, port id, age
//	stats [json]                      switch-wide counters
//	port N up|down                    link failure: nothing in or out
//	port N loss PCT [in]              drop PCT% of frames to (from) port N
//	port N delay MS [JITTER_MS] [in]  delay frames to (from) port N
//	port N clear                      remove faults, bring the port up
//	port N maxmacs M [drop|shutdown]  port security: at most M learned
//	                                  addresses (0: no bound)
//	port N storm RATE                 at most RATE flooded frames/s from
//	                                  port N (0: no bound)
//	hub on|off
//	pcap start FILE | pcap stop       FILE relative to the switch's directory
//	vxlan [json]                      VXLAN uplinks, remotes and counters
//	vxlan add|del ADDR[:PORT] [vni N] a remote endpoint (vxlan.go)
//	help
const maxCommandLine = 4096

// maxMgmtConns bounds concurrent management connections: each holds a
// descriptor, and idle ones never time out (a user may keep socat open),
// so without a bound a local client could use up the descriptors new
// guests need.
const maxMgmtConns = 128

// CommandError is a command the switch refused; its text follows "ERR ".
// Err is the error that made it fail, if one did (a file that would not
// open, an unknown VXLAN remote), for errors.Is and errors.As.
type CommandError struct {
	Reason string
	Err    error
}

func (e *CommandError) Error() string { return e.Reason }

func (e *CommandError) Unwrap() error { return e.Err }

// cmdErr formats a CommandError as fmt.Errorf does; an error given with
// %w becomes its Err.
func cmdErr(format string, a ...any) error {
	e := fmt.Errorf(format, a...)
	return &CommandError{Reason: e.Error(), Err: errors.Unwrap(e)}
}

// Command runs one management command and returns its reply lines (without
// the final OK) or a *CommandError.
func (sw *Switch) Command(line string) ([]string, error) {
	f := strings.Fields(line)
	asJSON := false
	if len(f) > 1 && f[len(f)-1] == "json" {
		asJSON = true
		f = f[:len(f)-1]
	}
	if len(f) == 0 {
		return nil, cmdErr("empty command")
	}
	switch f[0] {
	case "help":
		return strings.Split(strings.TrimSpace(helpText), "\n"), nil
	case "ports":
		if len(f) != 1 {
			return nil, cmdErr("usage: ports [json]")
		}
		return sw.portsReply(asJSON)
	case "macs":
		if len(f) != 1 {
			return nil, cmdErr("usage: macs [json]")
		}
		return sw.macsReply(asJSON)
	case "stats":
		if len(f) != 1 {
			return nil, cmdErr("usage: stats [json]")
		}
		st := sw.Stats()
		if asJSON {
			return jsonLine(st)
		}
		return []string{fmt.Sprintf("ports %d", st.Ports), fmt.Sprintf("macs %d", st.MACs),
			fmt.Sprintf("hub %s", onOff(st.Hub)), fmt.Sprintf("unregistered_drops %d", st.Unregistered),
			fmt.Sprintf("mac_table_size %d", st.MACTableSize), fmt.Sprintf("mac_evictions %d", st.MACEvictions),
			fmt.Sprintf("capture_drops %d", st.CaptureDrops), fmt.Sprintf("event_drops %d", st.EventDrops),
			fmt.Sprintf("status_drops %d", st.StatusDrops)}, nil
	case "hub":
		if len(f) != 2 || (f[1] != "on" && f[1] != "off") {
			return nil, cmdErr("usage: hub on|off")
		}
		sw.SetHub(f[1] == "on")
		return nil, nil
	case "pcap":
		return sw.pcapCommand(f[1:])
	case "port":
		return nil, sw.portCommand(f[1:])
	case "vxlan":
		return sw.vxlanCommand(f[1:], asJSON)
	}
	return nil, cmdErr("unknown command %q (try help)", f[0])
}

const helpText = `
ports [json]
macs [json]
stats [json]
port N up|down
port N loss PCT [in]
port N delay MS [JITTER_MS] [in]
port N clear
port N maxmacs M [drop|shutdown]
port N storm RATE
hub on|off
pcap start FILE | pcap stop
vxlan [json]
vxlan add|del ADDR[:PORT] [vni N]`

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func jsonLine(v any) ([]string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return []string{string(b)}, nil
}

type portJSON struct {
	ID        int               `json:"id"`
	Transport Transport         `json:"transport"`
	Peer      string            `json:"peer"`
	Up        bool              `json:"up"`
	MACs      int               `json:"macs"`
	RxFrames  uint64            `json:"rx_frames"`
	RxBytes   uint64            `json:"rx_bytes"`
	TxFrames  uint64            `json:"tx_frames"`
	TxBytes   uint64            `json:"tx_bytes"`
	Drops     map[string]uint64 `json:"drops"`
	LossOut   float64           `json:"loss_out_pct"`
	LossIn    float64           `json:"loss_in_pct"`
	DelayOut  float64           `json:"delay_out_ms"`
	JitterOut float64           `json:"jitter_out_ms"`
	DelayIn   float64           `json:"delay_in_ms"`
	JitterIn  float64           `json:"jitter_in_ms"`
	// Added with port security and peer identification.
	State     string `json:"state"` // up, down, shutdown
	MaxMACs   int    `json:"max_macs"`
	MACAction string `json:"mac_action"`
	StormRate int    `json:"storm_rate"` // flooded frames/s, 0: no bound
	PeerPID   int    `json:"peer_pid,omitempty"`
	UMID      string `json:"umid,omitempty"`
	PeerAddr  string `json:"peer_addr,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (sw *Switch) portsReply(asJSON bool) ([]string, error) {
	ports := sw.Ports()
	if asJSON {
		out := make([]portJSON, 0, len(ports))
		for _, p := range ports {
			drops := map[string]uint64{}
			for _, r := range DropReasons() {
				drops[r.String()] = p.Counters.Drop(r)
			}
			out = append(out, portJSON{ID: p.ID, Transport: p.Transport, Peer: p.Peer, Up: p.Up, MACs: p.MACs,
				RxFrames: p.Counters.RxFrames, RxBytes: p.Counters.RxBytes,
				TxFrames: p.Counters.TxFrames, TxBytes: p.Counters.TxBytes, Drops: drops,
				LossOut: p.Out.Loss * 100, LossIn: p.In.Loss * 100,
				DelayOut: ms(p.Out.Delay), JitterOut: ms(p.Out.Jitter), DelayIn: ms(p.In.Delay), JitterIn: ms(p.In.Jitter),
				State: p.State(), MaxMACs: p.MaxMACs, MACAction: p.MACAction.String(), StormRate: max(p.StormRate, 0),
				PeerPID: p.PeerPID, UMID: p.UMID, PeerAddr: p.PeerAddr})
		}
		return jsonLine(out)
	}
	lines := []string{"ID TRANSPORT STATE MACS RX_FRAMES RX_BYTES TX_FRAMES TX_BYTES DROPS FAULTS PEER"}
	for _, p := range ports {
		var drops []string
		for _, r := range DropReasons() {
			if n := p.Counters.Drop(r); n > 0 {
				drops = append(drops, fmt.Sprintf("%s=%d", r, n))
			}
		}
		if len(drops) == 0 {
			drops = []string{"-"}
		}
		var faults []string
		for _, d := range []struct {
			dir Direction
			f   Faults
		}{{Out, p.Out}, {In, p.In}} {
			if d.f.Loss > 0 {
				faults = append(faults, fmt.Sprintf("loss_%s=%g%%", d.dir, d.f.Loss*100))
			}
			if d.f.Delay > 0 || d.f.Jitter > 0 {
				faults = append(faults, fmt.Sprintf("delay_%s=%gms+%gms", d.dir, ms(d.f.Delay), ms(d.f.Jitter)))
			}
		}
		if p.MaxMACs > 0 {
			faults = append(faults, fmt.Sprintf("maxmacs=%d/%s", p.MaxMACs, p.MACAction))
		}
		if p.StormRate != sw.cfg.StormRate {
			faults = append(faults, fmt.Sprintf("storm=%d", max(p.StormRate, 0)))
		}
		if len(faults) == 0 {
			faults = []string{"-"}
		}
		state := p.State()
		lines = append(lines, fmt.Sprintf("%d %s %s %d %d %d %d %d %s %s %s", p.ID, p.Transport, state, p.MACs,
			p.Counters.RxFrames, p.Counters.RxBytes, p.Counters.TxFrames, p.Counters.TxBytes,
			strings.Join(drops, ","), strings.Join(faults, ","), p.Peer))
	}
	return lines, nil
}

func (sw *Switch) macsReply(asJSON bool) ([]string, error) {
	macs := sw.MACs()
	if asJSON {
		type macJSON struct {
			MAC  string  `json:"mac"`
			Port int     `json:"port"`
			Age  float64 `json:"age_s"`
		}
		out := make([]macJSON, 0, len(macs))
		for _, m := range macs {
			out = append(out, macJSON{MAC: m.MAC.String(), Port: m.Port, Age: m.Age.Seconds()})
		}
		return jsonLine(out)
	}
	lines := []string{"MAC PORT AGE_S"}
	for _, m := range macs {
		lines = append(lines, fmt.Sprintf("%s %d %.1f", m.MAC, m.Port, m.Age.Seconds()))
	}
	return lines, nil
}

func (sw *Switch) portCommand(f []string) error {
	const usage = "usage: port N up|down|clear|loss PCT [in]|delay MS [JITTER_MS] [in]|maxmacs M [drop|shutdown]|storm RATE"
	if len(f) < 2 {
		return cmdErr(usage)
	}
	id, err := strconv.Atoi(f[0])
	if err != nil {
		return cmdErr("port %q: not a port number", f[0])
	}
	dir := Out
	args := f[2:]
	if n := len(args); n > 0 && (args[n-1] == "in" || args[n-1] == "out") {
		if args[n-1] == "in" {
			dir = In
		}
		args = args[:n-1]
	}
	noPort := func(err error) error {
		if errors.Is(err, ErrNoPort) {
			return cmdErr("port %d: %w", id, err) // "port N: no such port"
		}
		return err
	}
	switch f[1] {
	case "up", "down":
		if len(args) != 0 {
			return cmdErr(usage)
		}
		return noPort(sw.SetPortUp(id, f[1] == "up"))
	case "clear":
		if len(args) != 0 {
			return cmdErr(usage)
		}
		return noPort(sw.ClearPort(id))
	case "maxmacs":
		if dir == In || len(f) < 3 || len(f) > 4 {
			return cmdErr("usage: port N maxmacs M [drop|shutdown]")
		}
		n, err := strconv.ParseUint(f[2], 10, 31)
		if err != nil {
			return cmdErr("maxmacs %q: not a number of addresses", f[2])
		}
		action := sw.cfg.PortMACAction
		if len(f) == 4 {
			a, ok := ParseSecurityAction(f[3])
			if !ok {
				return cmdErr("maxmacs action %q: not drop or shutdown", f[3])
			}
			action = a
		}
		return noPort(sw.SetPortMACs(id, int(n), action))
	case "storm":
		if dir == In || len(f) != 3 {
			return cmdErr("usage: port N storm RATE")
		}
		n, err := strconv.ParseUint(f[2], 10, 31)
		if err != nil {
			return cmdErr("storm %q: not a number of frames per second", f[2])
		}
		return noPort(sw.SetPortStorm(id, int(n)))
	case "loss":
		if len(args) != 1 {
			return cmdErr("usage: port N loss PCT [in]")
		}
		pct, err := strconv.ParseFloat(args[0], 64)
		if err != nil || !(pct >= 0 && pct <= 100) { // also refuses NaN
			return cmdErr("loss %q: not a percentage from 0 to 100", args[0])
		}
		cur, err := sw.faultsOf(id, dir)
		if err != nil {
			return noPort(err)
		}
		cur.Loss = pct / 100
		return noPort(sw.SetFaults(id, dir, cur))
	case "delay":
		if len(args) < 1 || len(args) > 2 {
			return cmdErr("usage: port N delay MS [JITTER_MS] [in]")
		}
		var v [2]time.Duration
		for i, a := range args {
			x, err := strconv.ParseFloat(a, 64)
			if err != nil || !(x >= 0 && x <= 60000) { // also refuses NaN
				return cmdErr("delay %q: not a number of milliseconds from 0 to 60000", a)
			}
			v[i] = time.Duration(x * float64(time.Millisecond))
		}
		cur, err := sw.faultsOf(id, dir)
		if err != nil {
			return noPort(err)
		}
		cur.Delay, cur.Jitter = v[0], v[1]
		return noPort(sw.SetFaults(id, dir, cur))
	}
	return cmdErr(usage)
}

func (sw *Switch) faultsOf(id int, dir Direction) (Faults, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	p := sw.ports[id]
	if p == nil {
		return Faults{}, ErrNoPort
	}
	return p.faults[dir], nil
}

func (sw *Switch) pcapCommand(f []string) ([]string, error) {
	switch {
	case len(f) == 2 && f[0] == "start":
		// O_NONBLOCK: a FIFO nobody reads yet is an error (ENXIO), not
		// a management connection stuck in open(2).
		file, err := os.OpenFile(f[1], os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NONBLOCK, 0o644)
		if err != nil {
			return nil, cmdErr("pcap %s: %w", f[1], err)
		}
		c, err := NewPcapCapture(file)
		if err != nil {
			file.Close()
			return nil, cmdErr("pcap %s: %w", f[1], err)
		}
		prev, _ := sw.SetCapture(&fileCapture{PcapCapture: c, f: file})
		closeCapture(prev)
		return nil, nil
	case len(f) == 1 && f[0] == "stop":
		drops := sw.Stats().CaptureDrops
		prev, err := sw.SetCapture(nil)
		closeCapture(prev)
		if prev == nil {
			return nil, cmdErr("no capture running")
		}
		reply := []string{fmt.Sprintf("capture_drops %d", drops)}
		if errors.Is(err, ErrCaptureStalled) {
			// Closing the file ended the blocked write; the
			// capture stops all the same.
			return append(reply, "capture reader was stalled; capture closed"), nil
		}
		if err != nil {
			return nil, cmdErr("capture ended with an error: %w", err)
		}
		return reply, nil
	}
	return nil, cmdErr("usage: pcap start FILE | pcap stop")
}

// fileCapture is a capture the management socket opened and so closes.
type fileCapture struct {
	*PcapCapture
	f *os.File
}

// closeCapture closes a capture's file once SetCapture gave it back (its
// queue written and flushed, or its writer stalled: closing a pipe or
// FIFO then ends the blocked write).
func closeCapture(c Capture) {
	if fc, ok := c.(*fileCapture); ok {
		_ = fc.f.Close()
	}
}

// mgmtServer serves the management socket.
type mgmtServer struct {
	sw    *Switch
	l     *net.UnixListener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// ListenManagement opens the management socket at s.Path (stale socket
// replaced, live one refused as for the control socket).
func (sw *Switch) ListenManagement(s SocketConfig) error {
	l, err := listenUnix("unix", s)
	if err != nil {
		return fmt.Errorf("management socket: %w", err)
	}
	m := &mgmtServer{sw: sw, l: l, conns: map[net.Conn]struct{}{}}
	sw.mu.Lock()
	sw.servers = append(sw.servers, m)
	sw.mu.Unlock()
	return nil
}

func (m *mgmtServer) close() error {
	err := m.l.Close()
	m.mu.Lock()
	for c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	return err
}

func (m *mgmtServer) serve(ctx context.Context) error {
	acceptLoop(ctx, m.l, m.accept)
	return nil
}

// accept serves c on a goroutine of its own, or refuses it with ERR when
// maxMgmtConns are open.
func (m *mgmtServer) accept(c *net.UnixConn) {
	m.mu.Lock()
	full := len(m.conns) >= maxMgmtConns
	if !full {
		m.conns[c] = struct{}{}
	}
	m.mu.Unlock()
	if full {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c, "ERR too many management connections\n")
		c.Close()
		return
	}
	if !m.sw.spawn(func() {
		m.sw.ServeManagement(c, c)
		c.Close()
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
	}) {
		c.Close()
	}
}

// ServeManagement answers commands read from r on w until r ends. A line
// longer than 4096 bytes is answered with ERR and skipped; the
// conversation goes on.
func (sw *Switch) ServeManagement(r io.Reader, w io.Writer) {
	br := bufio.NewReaderSize(r, maxCommandLine)
	bw := bufio.NewWriter(w)
	for {
		line, tooLong, err := readLine(br)
		if err != nil && line == "" && !tooLong {
			return
		}
		var reply []string
		var cerr error
		if tooLong {
			cerr = cmdErr("line longer than %d bytes", maxCommandLine)
		} else if strings.TrimSpace(line) == "" {
			if err != nil {
				return
			}
			continue
		} else {
			reply, cerr = sw.Command(line)
		}
		for _, l := range reply {
			bw.WriteString(l)
			bw.WriteByte('\n')
		}
		if cerr != nil {
			fmt.Fprintf(bw, "ERR %s\n", strings.ReplaceAll(cerr.Error(), "\n", " "))
		} else {
			bw.WriteString("OK\n")
		}
		if bw.Flush() != nil || err != nil {
			return
		}
	}
}

// readLine reads one line; a line that does not fit the buffer is read to
// its end and reported as tooLong.
func readLine(br *bufio.Reader) (line string, tooLong bool, err error) {
	b, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = br.ReadSlice('\n')
		}
		return "", true, err
	}
	return strings.TrimRight(string(b), "\r\n"), false, err
}
