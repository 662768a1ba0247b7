//go:build linux

package vswitch

import (
	"fmt"
	"io"
	"sync"
)

// DropReason says why a frame was not delivered. Counted per port.
type DropReason int

const (
	// DropRunt: shorter than an Ethernet header (14 bytes).
	DropRunt DropReason = iota
	// DropOversize: longer than the receive buffer (65535 bytes).
	DropOversize
	// DropPeerFull: the peer's receive queue was full; sends never block.
	DropPeerFull
	// DropPeerGone: the kernel refused the send (peer socket vanished).
	DropPeerGone
	// DropDown: the port is administratively down.
	DropDown
	// DropLoss: dropped on purpose by the port's loss setting.
	DropLoss
	// DropLocal: the destination MAC was learned on the ingress port.
	DropLocal
	// DropDelayFull: the port's delay line was full.
	DropDelayFull
	// DropSecurity: a frame from a new source address on a port at its
	// bound of learned addresses (port security).
	DropSecurity
	// DropStorm: a flooded frame (broadcast, multicast, unknown unicast)
	// over the port's storm-control rate.
	DropStorm
	// DropCapture: not a lost frame but a lost capture record — the
	// frame, which entered from this port, was forwarded, but the capture
	// reader was not keeping up.
	DropCapture
	numDropReasons
)

var dropNames = [numDropReasons]string{"runt", "oversize", "peer_full", "peer_gone", "down", "loss", "local", "delay_full", "port_security", "storm", "capture"}

func (r DropReason) String() string {
	if r >= 0 && r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("drop(%d)", int(r))
}

// DropReasons lists every reason, in counter order.
func DropReasons() []DropReason {
	r := make([]DropReason, numDropReasons)
	for i := range r {
		r[i] = DropReason(i)
	}
	return r
}

// Counters are one port's traffic counters. Rx counts frames the port
// delivered to the switch, Tx frames the switch handed to the port's peer.
type Counters struct {
	RxFrames, RxBytes uint64
	TxFrames, TxBytes uint64
	// Drops by reason: rx-side reasons (runt, oversize, down on ingress)
	// and tx-side ones (peer_full, peer_gone, down, loss, local).
	Drops [numDropReasons]uint64
}

// Drop returns the drop count for one reason.
func (c *Counters) Drop(r DropReason) uint64 { return c.Drops[r] }

// Transport names how a port's frames travel (Port.Transport); it is the
// "transport" column of the management socket's "ports" reply.
type Transport string

// The transports.
const (
	TransportDaemon Transport = "daemon" // UML daemon protocol (ListenDaemon)
	TransportBess   Transport = "bess"   // UML vector bess (ListenBess)
	TransportStream Transport = "stream" // QEMU -netdev stream (ListenStream)
	TransportTap    Transport = "tap"    // tap device (AddTap)
	TransportVXLAN  Transport = "vxlan"  // VXLAN uplink (AddVXLAN)
)

// portIO is what each transport implements: deliver one frame to the peer.
// send runs on a forwarding goroutine without the switch lock; it must
// never block, and reports a refused frame with tx.fail. Daemon ports
// queue into the caller's batch (one sendmmsg per batch); others write at
// once.
type portIO interface {
	send(tx *txContext, p *Port, frame []byte)
	close() error
}

// Port is one attachment to the switch: a guest's connection, a tap device
// or a VXLAN uplink. Its exported fields are set before the port is added
// and then only read; the others are guarded by the switch's lock; read
// them through Switch.Ports.
type Port struct {
	// ID is small, unique among live ports and stable for the port's life,
	// numbered as the C uml_switch numbers its ports (DefaultFirstPortID).
	ID int
	// Transport is how the port's frames travel.
	Transport Transport
	// Peer is a printable form of the peer's address.
	Peer string
	// PeerPID and UMID identify the peer process when known (set before
	// the port is added, then read-only).
	PeerPID int
	UMID    string
	// PeerAddr is the peer's address as Peer showed it before the peer
	// was identified.
	PeerAddr string

	tr       portIO
	key      string // daemon ports: the data socket address, as compared
	sendAddr []byte // daemon ports: the guest's raw sockaddr_un
	// daemon ports: the port's own data socket (-1 once closed), held
	// (read-locked) by whoever sends or receives on it so that it is
	// never closed, and its number reused, under them; its epoll token.
	dfdMu  sync.RWMutex
	dfd    int
	dtoken int32
	// restUntil (under the switch lock) and resting (the data loop's
	// own): a port over its storm-control rate is not read for a while.
	restUntil int64
	resting   bool
	conn      io.Closer // daemon ports: the control connection
	removed   bool
	failure   error // why the transport gave up on the port, if it did
	down      bool
	macs      int   // entries in the MAC table pointing here
	macHead   int32 // first of them (macTable's per-port list)
	// Port security: at most maxMACs learned addresses (0: no bound).
	maxMACs   int
	macAction SecurityAction
	shut      bool // shut down by port security until "port N up"
	violated  bool // a violation was reported since the last reset
	storm     tokenBucket
	stormRate int // flooded frames per second, <= 0: no bound
	c         Counters
	faults    [2]Faults     // by Direction
	delay     [2]*delayLine // by Direction, made when a delay is first set
}

// PortInfo is a snapshot of a port for listings.
type PortInfo struct {
	ID        int
	Transport Transport
	Peer      string
	Up        bool
	MACs      int
	Counters  Counters
	Out, In   Faults
	// Shutdown: port security shut the port down (Up is false too).
	Shutdown bool
	// MaxMACs is the port-security bound (0: none), MACAction its action.
	MaxMACs   int
	MACAction SecurityAction
	// StormRate bounds the frames per second the port may have flooded
	// (<= 0: none).
	StormRate int
	// PeerPID is the peer process's pid when known (0 otherwise): a UML
	// daemon guest's, read from its control connection's credentials;
	// UMID its umid= from that process's command line, if any.
	PeerPID  int
	UMID     string
	PeerAddr string
}

// State is "up", "down" or "shutdown" (by port security).
func (pi PortInfo) State() string {
	switch {
	case pi.Shutdown:
		return "shutdown"
	case !pi.Up:
		return "down"
	}
	return "up"
}

func (p *Port) info() PortInfo {
	return PortInfo{ID: p.ID, Transport: p.Transport, Peer: p.Peer, Up: !p.down, MACs: p.macs, Counters: p.c, Out: p.faults[Out], In: p.faults[In],
		Shutdown: p.shut, MaxMACs: p.maxMACs, MACAction: p.macAction, StormRate: p.stormRate, PeerPID: p.PeerPID, UMID: p.UMID, PeerAddr: p.PeerAddr}
}
