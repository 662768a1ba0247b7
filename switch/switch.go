//go:build linux

// Package vswitch is a virtual Ethernet switch for User-Mode Linux and
// QEMU labs, the engine behind uml_switch.
//
// A Switch forwards frames between ports. It learns source MACs (aging, a
// bounded table, O(1) per frame) or, in hub mode, floods every frame. Each
// port comes from one of these transports (Port.Transport):
//
//   - daemon (ListenDaemon): UML's legacy daemon protocol, a control
//     stream per guest and one datagram per frame between the guest's
//     socket and a data socket the switch names in its reply
//     (docs/protocols.md §1);
//   - bess (ListenBess): UML's vector "bess" transport, SOCK_SEQPACKET
//     (docs/protocols.md §2);
//   - stream (ListenStream): QEMU's -netdev stream, SOCK_STREAM with a
//     length before each frame (docs/protocols.md §2);
//   - tap (AddTap, AddPacketPort): a host tap device, or any descriptor
//     that carries one frame per read and write;
//   - vxlan (AddVXLAN): an uplink to other hosts over VXLAN (RFC 7348).
//
// The management socket (ListenManagement, Command) lists ports, MACs and
// counters, and sets faults, port state, port security, storm control,
// capture and VXLAN remotes (docs/protocols.md §3).
//
// What the switch guarantees:
//
//   - Every port has a small integer id, numbered as the C switch numbers
//     its ports (it prints its descriptors as "New port N"), and its own
//     counters; a frame not delivered is counted under a DropReason.
//   - The forwarding path never blocks on a peer or a reader: a full peer
//     queue drops that frame for that port only; capture records and
//     events go through bounded queues drained off the forwarding path,
//     and no I/O or callback runs under the forwarding lock. One
//     misbehaving guest or reader does not stall the others.
//   - Frames from senders that never registered are dropped and counted,
//     never flooded; a port may be bounded in the addresses it brings
//     (port security) and in the frames it floods (storm control).
//   - Run owns the goroutines the switch starts and returns once they have
//     ended (a capture writer blocked on a reader that stopped reading
//     excepted, see Capture).
//
// The package works on Linux only (Unix sockets with peer credentials,
// epoll, recvmmsg, tap devices).
package vswitch

import (
	"context"
	"errors"
	"net"
	"sort"
	"sync"
	"time"
)

// Defaults for Config.
const (
	// DefaultMACAge is how long a learned address is kept without traffic
	// from it; 300 s as Linux bridges (the C switch uses 100 s).
	DefaultMACAge = 300 * time.Second
	// DefaultMACTableSize bounds the MAC table; the least recently seen
	// entry goes when a new address arrives at a full table.
	DefaultMACTableSize = 65536
	// MaxFrame is the largest frame forwarded intact (the C switch cuts
	// at 1514, which breaks VLAN-tagged 1518-byte frames and raised MTUs).
	MaxFrame = 65535
	// MinFrame is an Ethernet header: destination, source, type.
	MinFrame = 14
	// DefaultStormRate is each port's bound on flooded frames per second
	// (storm control). A MAC flood's frames have unknown destinations
	// and so reach every port; unbounded, one flooding port fills every
	// other port's receive queue (10 frames for a UML) and their own
	// traffic is dropped. Broadcast and unknown unicast of real lab
	// traffic (ARP, neighbour discovery, DHCP, routing hellos, the first
	// frames to a host not yet learned) stay far below it.
	DefaultStormRate = 1000
)

// EventKind tells what an Event reports.
type EventKind int

const (
	// PortAdded: a port came up (the C switch prints "New connection").
	PortAdded EventKind = iota
	// PortRemoved: a port went away with its MACs ("Disconnect"). Err
	// says why when its transport failed (a tap device deleted under it).
	PortRemoved
	// MACLearned: a source address was learned on, or moved to, a port
	// (" Addr: MAC New port N [old port M]").
	MACLearned
	// RequestRejected: a control connection sent a bad request; only that
	// connection was closed.
	RequestRejected
	// CaptureStalled: the capture's reader stopped keeping up and the
	// first capture record was dropped; forwarding goes on. Reported once
	// per capture.
	CaptureStalled
	// PortSecurityViolation: a port at its bound of learned addresses
	// sent from a new one (MAC). Reported once per port until it is
	// reset; Action is the action taken.
	PortSecurityViolation
)

// Event reports something the C switch prints a line about, or a fault
// worth a warning. Events are queued (at most 4096; more are dropped and
// counted in Stats.EventDrops) and handed to Config.OnEvent, one at a time
// and in order, by a goroutine of Run, never with the switch lock held.
// OnEvent should return promptly: while it blocks, events queue up and
// then drop, though forwarding goes on.
type Event struct {
	Kind EventKind
	Port int // the port's ID
	// Transport is the port's transport (PortAdded, PortRemoved).
	Transport Transport
	// Action is what port security did (PortSecurityViolation).
	Action  SecurityAction
	MAC     net.HardwareAddr
	OldPort int // MACLearned: the port it moved from, or -1
	Err     error
	Count   uint64
}

// SecurityAction is what a port does with a frame from a new source
// address once it holds its bound of learned addresses.
type SecurityAction int

const (
	// SecurityDrop drops such frames (counted as port_security drops);
	// frames from addresses already learned pass.
	SecurityDrop SecurityAction = iota
	// SecurityShutdown shuts the port down as a switch's err-disable
	// does: nothing in or out, its addresses forgotten, until
	// "port N up" (SetPortUp) brings it back.
	SecurityShutdown
)

func (a SecurityAction) String() string {
	if a == SecurityShutdown {
		return "shutdown"
	}
	return "drop"
}

// ParseSecurityAction reads "drop" or "shutdown".
func ParseSecurityAction(s string) (SecurityAction, bool) {
	switch s {
	case "drop":
		return SecurityDrop, true
	case "shutdown":
		return SecurityShutdown, true
	}
	return 0, false
}

// Config configures a Switch. The zero value is a learning switch with the
// defaults above and no port security.
type Config struct {
	Hub          bool
	MACAge       time.Duration
	MACTableSize int
	// OnEvent, if set, receives events (see Event).
	OnEvent func(Event)
	// FirstPortID is the lowest port id; 0 means DefaultFirstPortID.
	FirstPortID int
	// PortMACs, if positive, bounds the addresses every new port may
	// have learned at once; PortMACAction says what a violation does.
	PortMACs      int
	PortMACAction SecurityAction
	// StormRate bounds the frames per second each port may have
	// flooded (broadcast, multicast, unknown unicast) in switch mode;
	// more are dropped and counted as storm drops. 0 means
	// DefaultStormRate, negative no bound. A hub floods everything and
	// has no bound.
	StormRate int
	// StatusDrops, if set, is reported as Stats.StatusDrops: the status
	// lines the program using the switch had to drop.
	StatusDrops func() uint64
}

// DefaultFirstPortID is the first descriptor the C switch gets for a port
// (0-2 are stdio, 3 the control socket, 4 the data socket). Port ids are
// handed out as the kernel hands out descriptors, lowest free one first,
// held from the control connection's accept to its close, so the numbers in
// "New port N" match the C switch's for the same sequence of events. They
// are not our descriptor numbers: the Go runtime and our extra listeners
// hold descriptors the C switch does not have.
const DefaultFirstPortID = 5

// Capture receives every frame entering the switch from a port. The
// switch calls it from a goroutine of its own, never on the forwarding
// path: a capture whose writes block loses records (counted), not frames.
type Capture interface {
	WriteFrame(t time.Time, frame []byte) error
	Flush() error
}

// captureWait bounds how long stopping a capture (SetCapture, the end of
// Run) waits for its writer to write what is queued. A writer blocked on a
// reader that stopped reading cannot be cancelled when it writes to an
// inherited descriptor (a terminal, stdout); it is left to the process.
const captureWait = time.Second

// ErrCaptureStalled: a capture was stopped while its writer was still
// blocked on its reader.
var ErrCaptureStalled = errors.New("capture writer blocked on a reader that stopped reading")

// ErrStopping: a port arrived while the switch was shutting down; it was
// refused and closed.
var ErrStopping = errors.New("switch is shutting down")

// Switch is a learning switch (or hub). Create it with New, attach
// transports (ListenDaemon, AddTap), then Run it.
type Switch struct {
	cfg   Config
	start time.Time
	age   int64

	mu           sync.Mutex
	hub          bool
	ports        map[int]*Port
	list         []*Port // live ports, for flooding
	macs         *macTable
	unregistered uint64 // datagrams from senders that are no port
	capq         *captureQueue
	capDropsPast uint64 // CaptureDrops of captures that ended
	events       *eventQueue

	servers []server
	running bool
	ids     map[int]bool // port ids in use, including pending connections
	// stopping: Run is shutting down; ports go away silently, as the C
	// switch prints no "Disconnect" for the ports it closes on exit, and
	// new ones are refused.
	stopping bool
	// goroutines are the per-connection and per-port goroutines (control
	// handshakes, stream and packet ports, delay lines); Run waits for
	// them.
	goroutines sync.WaitGroup
}

// server is an attached transport endpoint with its own goroutines.
type server interface {
	serve(ctx context.Context) error
	close() error
}

// New returns a switch with no ports.
func New(cfg Config) *Switch {
	if cfg.MACAge <= 0 {
		cfg.MACAge = DefaultMACAge
	}
	if cfg.MACTableSize <= 0 {
		cfg.MACTableSize = DefaultMACTableSize
	}
	if cfg.StormRate == 0 {
		cfg.StormRate = DefaultStormRate
	}
	return &Switch{
		cfg:    cfg,
		start:  time.Now(),
		age:    int64(cfg.MACAge),
		hub:    cfg.Hub,
		ports:  map[int]*Port{},
		macs:   newMACTable(cfg.MACTableSize),
		ids:    map[int]bool{},
		events: newEventQueue(),
	}
}

// spawn runs f on a goroutine Run waits for, unless the switch is
// stopping. Caller holds sw.mu.
func (sw *Switch) spawnLocked(f func()) bool {
	if sw.stopping {
		return false
	}
	sw.goroutines.Add(1)
	go func() {
		defer sw.goroutines.Done()
		f()
	}()
	return true
}

func (sw *Switch) spawn(f func()) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.spawnLocked(f)
}

// reserveID takes the lowest free port id.
func (sw *Switch) reserveID() int {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	id := sw.cfg.FirstPortID
	if id <= 0 {
		id = DefaultFirstPortID
	}
	for sw.ids[id] {
		id++
	}
	sw.ids[id] = true
	return id
}

// releaseID frees an id reserveID handed out.
func (sw *Switch) releaseID(id int) {
	sw.mu.Lock()
	delete(sw.ids, id)
	sw.mu.Unlock()
}

func (sw *Switch) now() int64 { return int64(time.Since(sw.start)) }

// event queues e for OnEvent; it never blocks.
func (sw *Switch) event(e queuedEvent) { sw.events.put(e) }

// Run serves every attached transport until ctx is done or one of them
// fails, then closes all ports and removes the socket files it created. It
// returns once every goroutine it started has ended, except a capture
// writer blocked on a reader that stopped reading, which it gives up on
// after a second (see Capture).
func (sw *Switch) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sw.mu.Lock()
	servers := append([]server(nil), sw.servers...)
	sw.running = true
	sw.mu.Unlock()

	stopEvents := make(chan struct{})
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		sw.events.dispatch(stopEvents, sw.cfg.OnEvent)
	}()
	errc := make(chan error, len(servers)+1)
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func(s server) {
			defer wg.Done()
			if err := s.serve(ctx); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		}(s)
	}
	wg.Add(1)
	go func() { defer wg.Done(); sw.ager(ctx) }()
	<-ctx.Done()
	sw.mu.Lock()
	sw.stopping = true
	sw.mu.Unlock()
	for _, s := range servers {
		_ = s.close()
	}
	wg.Wait()
	sw.mu.Lock()
	ports := append([]*Port(nil), sw.list...)
	sw.mu.Unlock()
	for _, p := range ports {
		sw.removePort(p, false)
	}
	sw.goroutines.Wait()
	for _, s := range servers {
		if r, ok := s.(releaser); ok {
			r.release()
		}
	}
	sw.mu.Lock()
	q := sw.capq
	sw.mu.Unlock()
	if q != nil {
		// What was queued is written out; SetCapture(nil) still
		// returns the capture.
		q.close()
		_, _ = q.wait(captureWait)
	}
	close(stopEvents)
	<-eventsDone
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// Close releases what the transports hold (sockets, socket files) when the
// switch is never Run.
func (sw *Switch) Close() error {
	sw.mu.Lock()
	servers := sw.servers
	sw.servers = nil
	sw.stopping = true
	sw.mu.Unlock()
	var first error
	for _, s := range servers {
		if err := s.close(); err != nil && first == nil {
			first = err
		}
		if r, ok := s.(releaser); ok {
			r.release()
		}
	}
	return first
}

// releaser is a server holding descriptors that forwarding goroutines use
// until Run has stopped them all.
type releaser interface{ release() }

// agerChunk bounds the entries one pass of the ager removes under the
// lock; it comes back at once for the rest.
const agerChunk = 1024

// ager drops expired MAC entries now and then; lookups also ignore expired
// entries, so this only bounds memory.
func (sw *Switch) ager(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for more := true; more && ctx.Err() == nil; {
				sw.mu.Lock()
				more = sw.macs.expire(sw.now(), sw.age, agerChunk)
				sw.mu.Unlock()
			}
		}
	}
}

// addPort registers p, whose ID came from reserveID; removePort frees it.
// A port arriving while the switch stops is refused (ErrStopping): the
// caller closes its transport.
func (sw *Switch) addPort(p *Port) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.stopping {
		delete(sw.ids, p.ID)
		return ErrStopping
	}
	p.macHead = nilEnt
	p.maxMACs = sw.cfg.PortMACs
	p.macAction = sw.cfg.PortMACAction
	p.stormRate = sw.cfg.StormRate
	p.storm = tokenBucket{tokens: stormBurst, last: sw.now()}
	sw.ports[p.ID] = p
	sw.list = append(sw.list, p)
	sw.event(queuedEvent{kind: PortAdded, port: p.ID, transport: p.Transport})
	return nil
}

// removePort takes p and its MACs out of the switch and closes its
// transport. It reports whether p was still there.
func (sw *Switch) removePort(p *Port, announce bool) bool {
	sw.mu.Lock()
	if p.removed {
		sw.mu.Unlock()
		return false
	}
	p.removed = true
	announce = announce && !sw.stopping
	failure := p.failure
	for _, dl := range p.delay {
		if dl != nil {
			dl.close()
		}
	}
	delete(sw.ports, p.ID)
	delete(sw.ids, p.ID)
	for i, q := range sw.list {
		if q == p {
			sw.list = append(sw.list[:i], sw.list[i+1:]...)
			break
		}
	}
	sw.macs.removePort(p)
	if announce {
		sw.event(queuedEvent{kind: PortRemoved, port: p.ID, transport: p.Transport, err: failure})
	}
	sw.mu.Unlock()
	if c, ok := p.tr.(portCloser); ok {
		c.closePort(p)
	}
	return true
}

// portCloser is a transport that holds a descriptor per port, closed when
// the port is removed.
type portCloser interface{ closePort(p *Port) }

// ingress handles one frame from port in. Caller holds sw.mu.
func (sw *Switch) ingress(tx *txContext, in *Port, frame []byte, now int64) {
	if len(frame) < MinFrame {
		in.c.Drops[DropRunt]++
		return
	}
	if in.down {
		in.c.Drops[DropDown]++
		return
	}
	in.c.RxFrames++
	in.c.RxBytes += uint64(len(frame))
	if in.impaired(In, frame) {
		return
	}
	sw.forward(tx, in, frame, now)
}

// forward captures, learns and delivers one frame from port in. Caller
// holds sw.mu.
func (sw *Switch) forward(tx *txContext, in *Port, frame []byte, now int64) {
	if q := sw.capq; q != nil {
		if dropped, first := q.add(now, frame); dropped {
			in.c.Drops[DropCapture]++
			if first {
				sw.event(queuedEvent{kind: CaptureStalled, port: in.ID})
			}
		}
		tx.capture = q
	}
	var src, dst [6]byte
	copy(dst[:], frame[0:6])
	copy(src[:], frame[6:12])
	if src[0]&1 == 0 && !sw.learn(src, in, now) {
		return
	}
	if !sw.hub && dst[0]&1 == 0 {
		if i := sw.macs.lookup(dst); i != nilEnt {
			if e := &sw.macs.ents[i]; now-e.seen <= sw.age {
				if e.port == in {
					in.c.Drops[DropLocal]++
					return
				}
				sw.deliver(tx, e.port, frame)
				return
			}
		}
	}
	if !sw.hub && !in.storm.take(now, in.stormRate) {
		in.c.Drops[DropStorm]++
		return
	}
	for _, p := range sw.list {
		if p != in {
			sw.deliver(tx, p, frame)
		}
	}
}

// stormBurst is how many flooded frames a port may send at once after a
// quiet spell (a guest booting sends a handful of neighbour discovery and
// multicast frames together); a sustained flood gets the rate alone.
const stormBurst = 64

// tokenBucket limits a port's flooded frames (storm control).
type tokenBucket struct {
	tokens float64
	last   int64
}

// take reports whether a frame may pass at time now (ns), at rate frames
// per second with bursts of stormBurst; rate <= 0 lets everything pass.
func (b *tokenBucket) take(now int64, rate int) bool {
	if rate <= 0 {
		return true
	}
	const burst = stormBurst
	b.tokens += float64(now-b.last) * float64(rate) / 1e9
	b.last = now
	if b.tokens > burst {
		b.tokens = burst
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// deliver queues frame for p; transmit sends it once the lock is released.
// Caller holds sw.mu.
func (sw *Switch) deliver(tx *txContext, p *Port, frame []byte) {
	if p.down {
		p.c.Drops[DropDown]++
		return
	}
	if p.impaired(Out, frame) {
		return
	}
	p.c.TxFrames++
	p.c.TxBytes += uint64(len(frame))
	tx.items = append(tx.items, txItem{p: p, frame: frame})
}

// txFailed undoes the tx count of a frame the peer refused. Caller holds
// sw.mu.
func (p *Port) txFailed(n int, full bool) {
	p.c.TxFrames--
	p.c.TxBytes -= uint64(n)
	if full {
		p.c.Drops[DropPeerFull]++
	} else {
		p.c.Drops[DropPeerGone]++
	}
}

// learn records that src sent from port in and reports whether the frame
// may pass (port security may refuse it). Caller holds sw.mu.
func (sw *Switch) learn(src [6]byte, in *Port, now int64) bool {
	t := sw.macs
	i := t.lookup(src)
	if i != nilEnt {
		e := &t.ents[i]
		if e.port == in {
			if now-e.seen > sw.age {
				sw.event(queuedEvent{kind: MACLearned, port: in.ID, mac: src, oldPort: -1})
			}
			t.touch(i, now)
			return true
		}
	}
	// A new address for this port.
	if in.maxMACs > 0 && in.macs >= in.maxMACs {
		// Entries that have expired but that the ager has not yet
		// taken still count; give them back first (bounded work).
		t.expire(now, sw.age, 64)
		i = t.lookup(src)
		if in.macs >= in.maxMACs {
			sw.violation(in, src)
			return false
		}
	}
	if i == nilEnt {
		t.insert(src, in, now)
		sw.event(queuedEvent{kind: MACLearned, port: in.ID, mac: src, oldPort: -1})
		return true
	}
	e := &t.ents[i]
	old := -1
	if now-e.seen <= sw.age {
		old = e.port.ID
	}
	t.move(i, in)
	t.touch(i, now)
	sw.event(queuedEvent{kind: MACLearned, port: in.ID, mac: src, oldPort: old})
	return true
}

// violation handles a frame from a new source on a port at its bound.
// Caller holds sw.mu.
func (sw *Switch) violation(in *Port, src [6]byte) {
	in.c.Drops[DropSecurity]++
	if in.macAction == SecurityShutdown {
		in.down = true
		in.shut = true
		sw.macs.removePort(in)
	}
	if !in.violated {
		in.violated = true
		sw.event(queuedEvent{kind: PortSecurityViolation, port: in.ID, mac: src, action: in.macAction})
	}
}

// Ports lists the live ports, by id.
func (sw *Switch) Ports() []PortInfo {
	sw.mu.Lock()
	out := make([]PortInfo, 0, len(sw.list))
	for _, p := range sw.list {
		out = append(out, p.info())
	}
	sw.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// MACEntry is one learned address.
type MACEntry struct {
	MAC  net.HardwareAddr
	Port int
	Age  time.Duration
}

// MACs lists the learned addresses that have not expired.
func (sw *Switch) MACs() []MACEntry {
	sw.mu.Lock()
	now := sw.now()
	t := sw.macs
	out := make([]MACEntry, 0, t.len())
	for i := t.head; i != nilEnt; i = t.ents[i].next {
		e := &t.ents[i]
		if now-e.seen > sw.age {
			break // the rest is older still
		}
		out = append(out, MACEntry{MAC: append(net.HardwareAddr(nil), e.mac[:]...), Port: e.port.ID, Age: time.Duration(now - e.seen)})
	}
	sw.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].MAC.String() < out[j].MAC.String() })
	return out
}

// Stats are switch-wide counters.
type Stats struct {
	Ports        int    `json:"ports"`
	MACs         int    `json:"macs"`
	Hub          bool   `json:"hub"`
	Unregistered uint64 `json:"unregistered_drops"` // datagrams from senders that are no port, dropped
	// MACTableSize is the table's bound; MACEvictions counts entries
	// evicted (least recently seen first) to make room at a full table.
	MACTableSize int    `json:"mac_table_size"`
	MACEvictions uint64 `json:"mac_evictions"`
	// CaptureDrops counts capture records dropped because a capture's
	// reader did not keep up (all captures since the switch started).
	CaptureDrops uint64 `json:"capture_drops"`
	// EventDrops counts events dropped because OnEvent did not keep up.
	EventDrops uint64 `json:"event_drops"`
	// StatusDrops: see Config.StatusDrops.
	StatusDrops uint64 `json:"status_drops"`
}

// Stats returns the switch-wide counters.
func (sw *Switch) Stats() Stats {
	sw.mu.Lock()
	st := Stats{Ports: len(sw.list), MACs: sw.macs.len(), Hub: sw.hub, Unregistered: sw.unregistered,
		MACTableSize: sw.macs.max, MACEvictions: sw.macs.evictions}
	st.CaptureDrops = sw.capDropsPast
	if sw.capq != nil {
		st.CaptureDrops += sw.capq.dropped.Load()
	}
	sw.mu.Unlock()
	st.EventDrops = sw.events.dropped.Load()
	if sw.cfg.StatusDrops != nil {
		st.StatusDrops = sw.cfg.StatusDrops()
	}
	return st
}

// SetHub switches between hub (flood everything) and learning switch.
func (sw *Switch) SetHub(on bool) {
	sw.mu.Lock()
	sw.hub = on
	sw.mu.Unlock()
}

// SetCapture starts (c != nil) or stops (nil) capturing every frame that
// enters the switch. It returns the previous capture, with what was queued
// for it written and flushed, and the error that ended it if writing to it
// failed — or ErrCaptureStalled if its writer stayed blocked for a second,
// in which case it is still writing: the caller may close what it writes
// to, which unblocks a pipe or FIFO.
func (sw *Switch) SetCapture(c Capture) (Capture, error) {
	var q *captureQueue
	if c != nil {
		q = newCaptureQueue(c, sw.start)
	}
	sw.mu.Lock()
	prev := sw.capq
	sw.capq = q
	sw.mu.Unlock()
	if prev == nil {
		return nil, nil
	}
	prev.close()
	// Closed: its count no longer moves.
	sw.mu.Lock()
	sw.capDropsPast += prev.dropped.Load()
	sw.mu.Unlock()
	err, done := prev.wait(captureWait)
	if !done {
		err = ErrCaptureStalled
	}
	return prev.c, err
}

// ErrNoPort is returned for a port id that is not live.
var ErrNoPort = errors.New("no such port")

// SetPortUp takes a port down (nothing in or out) or up again; up also
// brings back a port that port security shut down.
func (sw *Switch) SetPortUp(id int, up bool) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	p := sw.ports[id]
	if p == nil {
		return ErrNoPort
	}
	p.down = !up
	if up {
		p.shut = false
		p.violated = false
	}
	return nil
}

// SetPortStorm sets port id's bound on flooded frames per second (<= 0:
// none).
func (sw *Switch) SetPortStorm(id, rate int) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	p := sw.ports[id]
	if p == nil {
		return ErrNoPort
	}
	p.stormRate = rate
	return nil
}

// SetPortMACs bounds the addresses port id may have learned at once (0:
// no bound) and sets the action on a violation. Addresses learned beyond
// a new, lower bound stay until they age out or the port goes.
func (sw *Switch) SetPortMACs(id, max int, action SecurityAction) error {
	if max < 0 {
		return errors.New("negative address bound")
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	p := sw.ports[id]
	if p == nil {
		return ErrNoPort
	}
	p.maxMACs, p.macAction, p.violated = max, action, false
	return nil
}
