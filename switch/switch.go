// Package vswitch is a virtual Ethernet switch for User-Mode Linux labs, the
// engine behind uml_switch:
//
//	uml_switch [-unix CTL] [-hub] [-tap DEV] [-daemon] [-pcap FILE|-] [-q]
//	uml_switch -compat-v0 [-unix CTL DATA] ...
//
// A Switch forwards frames between ports. Ports are interchangeable
// transports: UML's "daemon" protocol (a control stream per guest plus one
// shared datagram socket, docs/protocols.md §1) and tap devices so far. It learns
// source MACs (aging, bounded table) or, in hub mode, floods every frame.
// Every port has a small integer id, numbered as the C switch numbers its
// ports (it prints its descriptors as "New port N") and its own counters.
//
// The forwarding path never blocks on a peer: a full peer queue drops that
// frame for that port only, and counts it. Frames from senders that never
// registered are dropped and counted, never flooded.
package vswitch

import (
	"context"
	"errors"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/umlutils/umlutils/internal/mmsg"
)

// Defaults for Config.
const (
	// DefaultMACAge is how long a learned address is kept without traffic
	// from it; 300 s as Linux bridges (the C switch uses 100 s).
	DefaultMACAge = 300 * time.Second
	// DefaultMACTableSize bounds the MAC table; the oldest entry goes when
	// a new address arrives at a full table.
	DefaultMACTableSize = 65536
	// MaxFrame is the largest frame forwarded intact (the C switch cuts
	// at 1514, which breaks VLAN-tagged 1518-byte frames and raised MTUs).
	MaxFrame = 65535
	// MinFrame is an Ethernet header: destination, source, type.
	MinFrame = 14
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
)

// Event reports something the C switch prints a line about. Handlers run
// synchronously, some with the switch lock held: they must be quick and
// must not call back into the Switch.
type Event struct {
	Kind    EventKind
	Port    int // the port's ID
	Kind2   string
	MAC     net.HardwareAddr
	OldPort int // MACLearned: the port it moved from, or -1
	Err     error
}

// Config configures a Switch. The zero value is a learning switch with the
// defaults above.
type Config struct {
	Hub          bool
	MACAge       time.Duration
	MACTableSize int
	// OnEvent, if set, receives events (see Event).
	OnEvent func(Event)
	// FirstPortID is the lowest port id; 0 means DefaultFirstPortID.
	FirstPortID int
}

// DefaultFirstPortID is the first descriptor the C switch gets for a port
// (0-2 are stdio, 3 the control socket, 4 the data socket). Port ids are
// handed out as the kernel hands out descriptors, lowest free one first,
// held from the control connection's accept to its close, so the numbers in
// "New port N" match the C switch's for the same sequence of events. They
// are not our descriptor numbers: the Go runtime and our extra listeners
// hold descriptors the C switch does not have.
const DefaultFirstPortID = 5

// Capture receives every frame entering the switch from a port.
type Capture interface {
	WriteFrame(t time.Time, frame []byte) error
	Flush() error
}

type macEntry struct {
	port *Port
	seen int64 // nanoseconds since the switch started
}

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
	macs         map[[6]byte]*macEntry
	maxMACs      int
	unregistered uint64 // datagrams from senders that are no port
	capture      Capture
	captureErr   error

	servers []server
	running bool
	ids     map[int]bool // port ids in use, including pending connections
	// stopping: Run is shutting down; ports go away silently, as the C
	// switch prints no "Disconnect" for the ports it closes on exit.
	stopping bool
	dtx      *txContext // output batch of the delay lines
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
	return &Switch{
		cfg:     cfg,
		start:   time.Now(),
		age:     int64(cfg.MACAge),
		hub:     cfg.Hub,
		ports:   map[int]*Port{},
		macs:    map[[6]byte]*macEntry{},
		maxMACs: cfg.MACTableSize,
		ids:     map[int]bool{},
	}
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

func (sw *Switch) event(e Event) {
	if sw.cfg.OnEvent != nil {
		sw.cfg.OnEvent(e)
	}
}

// Run serves every attached transport until ctx is done or one of them
// fails, then closes all ports and removes the socket files it created.
func (sw *Switch) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sw.mu.Lock()
	servers := append([]server(nil), sw.servers...)
	sw.running = true
	sw.mu.Unlock()

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
	sw.mu.Lock()
	if sw.capture != nil {
		_ = sw.capture.Flush()
	}
	sw.mu.Unlock()
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
	sw.mu.Unlock()
	var first error
	for _, s := range servers {
		if err := s.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ager drops expired MAC entries now and then; lookups also ignore expired
// entries, so this only bounds memory.
func (sw *Switch) ager(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sw.mu.Lock()
			sw.expire(sw.now())
			sw.mu.Unlock()
		}
	}
}

func (sw *Switch) expire(now int64) {
	for mac, e := range sw.macs {
		if now-e.seen > sw.age {
			e.port.macs--
			delete(sw.macs, mac)
		}
	}
}

// addPort registers p, whose ID came from reserveID; removePort frees it.
func (sw *Switch) addPort(p *Port) {
	sw.mu.Lock()
	sw.ports[p.ID] = p
	sw.list = append(sw.list, p)
	sw.mu.Unlock()
	sw.event(Event{Kind: PortAdded, Port: p.ID, Kind2: p.Kind})
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
	if p.macs > 0 {
		for mac, e := range sw.macs {
			if e.port == p {
				delete(sw.macs, mac)
			}
		}
		p.macs = 0
	}
	sw.mu.Unlock()
	if c, ok := p.tr.(portCloser); ok {
		c.closePort(p)
	}
	if announce {
		sw.event(Event{Kind: PortRemoved, Port: p.ID, Kind2: p.Kind, Err: failure})
	}
	return true
}

// portCloser is a transport that holds a descriptor per port, closed when
// the port is removed.
type portCloser interface{ closePort(p *Port) }

// txContext is one ingress goroutine's pending output: datagrams for
// daemon ports, sent with one sendmmsg per ingress batch.
type txContext struct {
	dgramFD int
	dgram   *mmsg.SendBatch
	dports  []*Port
	bytes   []int
}

func newTxContext(n int) *txContext {
	return &txContext{dgramFD: -1, dgram: mmsg.NewSendBatch(n), dports: make([]*Port, n), bytes: make([]int, n)}
}

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
	if sw.capture != nil {
		if err := sw.capture.WriteFrame(sw.start.Add(time.Duration(now)), frame); err != nil {
			sw.captureErr = err
			sw.capture = nil
		}
	}
	var src, dst [6]byte
	copy(dst[:], frame[0:6])
	copy(src[:], frame[6:12])
	if src[0]&1 == 0 {
		sw.learn(src, in, now)
	}
	if !sw.hub && dst[0]&1 == 0 {
		if e := sw.macs[dst]; e != nil && now-e.seen <= sw.age {
			if e.port == in {
				in.c.Drops[DropLocal]++
				return
			}
			sw.deliver(tx, e.port, frame)
			return
		}
	}
	for _, p := range sw.list {
		if p != in {
			sw.deliver(tx, p, frame)
		}
	}
}

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
	p.tr.send(tx, p, frame)
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

func (sw *Switch) learn(src [6]byte, in *Port, now int64) {
	e := sw.macs[src]
	if e == nil {
		if len(sw.macs) >= sw.maxMACs {
			sw.evictOldest(now)
		}
		sw.macs[src] = &macEntry{port: in, seen: now}
		in.macs++
		sw.event(Event{Kind: MACLearned, Port: in.ID, MAC: append(net.HardwareAddr(nil), src[:]...), OldPort: -1})
		return
	}
	if e.port != in || now-e.seen > sw.age {
		old := -1
		if e.port != in {
			if now-e.seen <= sw.age {
				old = e.port.ID
			}
			e.port.macs--
			in.macs++
			e.port = in
		}
		sw.event(Event{Kind: MACLearned, Port: in.ID, MAC: append(net.HardwareAddr(nil), src[:]...), OldPort: old})
	}
	e.seen = now
}

// evictOldest makes room in a full table: expired entries first, else the
// least recently seen one. Rare (only a flood of fresh source addresses
// gets here), so a scan is fine.
func (sw *Switch) evictOldest(now int64) {
	sw.expire(now)
	if len(sw.macs) < sw.maxMACs {
		return
	}
	var oldest [6]byte
	var oe *macEntry
	for mac, e := range sw.macs {
		if oe == nil || e.seen < oe.seen {
			oldest, oe = mac, e
		}
	}
	if oe != nil {
		oe.port.macs--
		delete(sw.macs, oldest)
	}
}

// flush sends what tx collected. Caller holds sw.mu.
func (sw *Switch) flush(tx *txContext) {
	if tx.dgram.Len() == 0 {
		return
	}
	tx.dgram.Flush(tx.dgramFD, msgDontwait, func(i int, err errno) {
		tx.dports[i].txFailed(tx.bytes[i], err == eagain)
	})
	for i := range tx.dports {
		tx.dports[i] = nil
	}
}

// endBatch sends what an ingress batch produced and flushes the capture.
// Caller holds sw.mu.
func (sw *Switch) endBatch(tx *txContext) {
	sw.flush(tx)
	if sw.capture != nil {
		if err := sw.capture.Flush(); err != nil {
			sw.captureErr = err
			sw.capture = nil
		}
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
	out := make([]MACEntry, 0, len(sw.macs))
	for mac, e := range sw.macs {
		if now-e.seen > sw.age {
			continue
		}
		out = append(out, MACEntry{MAC: append(net.HardwareAddr(nil), mac[:]...), Port: e.port.ID, Age: time.Duration(now - e.seen)})
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
}

// Stats returns the switch-wide counters.
func (sw *Switch) Stats() Stats {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return Stats{Ports: len(sw.list), MACs: len(sw.macs), Hub: sw.hub, Unregistered: sw.unregistered}
}

// SetHub switches between hub (flood everything) and learning switch.
func (sw *Switch) SetHub(on bool) {
	sw.mu.Lock()
	sw.hub = on
	sw.mu.Unlock()
}

// SetCapture starts (c != nil) or stops (nil) capturing every frame that
// enters the switch. It returns the previous capture, flushed, and the
// error that ended it if writing to it failed.
func (sw *Switch) SetCapture(c Capture) (Capture, error) {
	sw.mu.Lock()
	prev, err := sw.capture, sw.captureErr
	sw.capture, sw.captureErr = c, nil
	sw.mu.Unlock()
	if prev != nil {
		if ferr := prev.Flush(); err == nil {
			err = ferr
		}
	}
	return prev, err
}

// ErrNoPort is returned for a port id that is not live.
var ErrNoPort = errors.New("no such port")

// SetPortUp takes a port down (nothing in or out) or up again.
func (sw *Switch) SetPortUp(id int, up bool) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	p := sw.ports[id]
	if p == nil {
		return ErrNoPort
	}
	p.down = !up
	return nil
}
