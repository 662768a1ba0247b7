package vswitch

import (
	"fmt"
	"io"
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
	numDropReasons
)

var dropNames = [numDropReasons]string{"runt", "oversize", "peer_full", "peer_gone", "down", "loss", "local", "delay_full"}

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

// transport is what a port kind implements: deliver one frame to the peer.
// send runs with the switch lock held; it must never block. Daemon ports
// queue into the caller's batch (one sendmmsg per ingress batch); others
// write at once.
type transport interface {
	send(tx *txContext, p *Port, frame []byte)
	close() error
}

// Port is one attachment to the switch: a UML daemon connection, a tap, or
// later kinds. Its fields other than ID, Kind and Peer are guarded by the
// switch's lock; read them through Switch.Ports.
type Port struct {
	// ID is small, unique among live ports and stable for the port's life,
	// numbered as the C uml_switch numbers its ports (DefaultFirstPortID).
	ID int
	// Kind names the transport: "daemon", "tap".
	Kind string
	// Peer is a printable form of the peer's address.
	Peer string

	tr       transport
	key      string    // daemon ports: the data socket address, as compared
	sendAddr []byte    // daemon ports: the raw sockaddr_un replies go to
	conn     io.Closer // daemon ports: the control connection
	removed  bool
	failure  error // why the transport gave up on the port, if it did
	down     bool
	macs     int // entries in the MAC table pointing here
	c        Counters
	faults   [2]Faults     // by Direction
	delay    [2]*delayLine // by Direction, made when a delay is first set
}

// PortInfo is a snapshot of a port for listings.
type PortInfo struct {
	ID       int
	Kind     string
	Peer     string
	Up       bool
	MACs     int
	Counters Counters
	Out, In  Faults
}

func (p *Port) info() PortInfo {
	return PortInfo{ID: p.ID, Kind: p.Kind, Peer: p.Peer, Up: !p.down, MACs: p.macs, Counters: p.c, Out: p.faults[Out], In: p.faults[In]}
}
