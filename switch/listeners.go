//go:build linux

package vswitch

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// portListener accepts connections on a Unix socket and makes each one a
// port: SOCK_SEQPACKET for UML's vector "bess" transport (one frame per
// packet, docs/protocols.md §2), SOCK_STREAM for QEMU's -netdev stream (each
// frame after a 4-byte big-endian length).
type portListener struct {
	sw   *Switch
	kind Transport
	path string
	l    *net.UnixListener
}

// ListenBess serves UML vector guests (vecN:transport=bess,dst=PATH) on a
// SOCK_SEQPACKET socket at s.Path.
func (sw *Switch) ListenBess(s SocketConfig) error {
	return sw.listenPorts(TransportBess, "unixpacket", s)
}

// ListenStream serves QEMU guests (-netdev stream,server=off,
// addr.type=unix,addr.path=PATH) on a SOCK_STREAM socket at s.Path.
func (sw *Switch) ListenStream(s SocketConfig) error {
	return sw.listenPorts(TransportStream, "unix", s)
}

func (sw *Switch) listenPorts(kind Transport, network string, s SocketConfig) error {
	l, err := listenUnix(network, s)
	if err != nil {
		return fmt.Errorf("%s socket: %w", kind, err)
	}
	pl := &portListener{sw: sw, kind: kind, path: s.Path, l: l}
	sw.mu.Lock()
	sw.servers = append(sw.servers, pl)
	sw.mu.Unlock()
	return nil
}

func (pl *portListener) close() error { return pl.l.Close() }

func (pl *portListener) serve(ctx context.Context) error {
	acceptLoop(ctx, pl.l, pl.accept)
	return nil
}

// accept makes c a port: bess connections become packet ports, stream
// connections stream ports.
func (pl *portListener) accept(c *net.UnixConn) {
	peer := string(pl.kind) + ":" + pl.path
	if ra, ok := c.RemoteAddr().(*net.UnixAddr); ok && ra != nil && ra.Name != "" && ra.Name != "@" {
		peer = string(pl.kind) + ":" + ra.Name
	}
	var who Port
	who.Peer = peer
	identifyConn(&who, c, pl.kind)
	if pl.kind == TransportBess {
		// Take the descriptor over as a packet port (one frame
		// per read and write, like a tap).
		fd := -1
		if rc, err := c.SyscallConn(); err == nil {
			_ = rc.Control(func(s uintptr) { fd, _ = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
		}
		c.Close()
		if fd < 0 {
			return
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return
		}
		_, _ = pl.sw.addPacketPort(TransportBess, os.NewFile(uintptr(fd), peer), &who)
		return
	}
	pl.sw.addStreamPort(c, &who)
}

// streamPort carries frames over a byte stream, each after its 4-byte
// big-endian length. The switch never blocks on it: frames go into a
// bounded buffer that a writer goroutine drains.
type streamPort struct {
	sw      *Switch
	c       *net.UnixConn
	port    *Port
	mu      sync.Mutex
	pending []byte
	kick    chan struct{}
	done    chan struct{}
}

// maxStreamPending bounds the bytes queued for one stream peer.
const maxStreamPending = 1 << 20

func (sw *Switch) addStreamPort(c *net.UnixConn, who *Port) {
	id := sw.reserveID()
	sp := &streamPort{sw: sw, c: c, kick: make(chan struct{}, 1), done: make(chan struct{})}
	p := &Port{ID: id, Transport: TransportStream, Peer: who.Peer, PeerPID: who.PeerPID, UMID: who.UMID, PeerAddr: who.PeerAddr, tr: sp}
	sp.port = p
	if err := sw.addPort(p); err != nil {
		c.Close()
		return
	}
	sw.mu.Lock()
	ok := sw.spawnLocked(sp.writer) && sw.spawnLocked(sp.reader)
	sw.mu.Unlock()
	if !ok {
		// Stopping: the port was added and is removed with the others,
		// which closes c and so ends a writer that did start.
		close(sp.done)
		c.Close()
	}
}

func (sp *streamPort) send(tx *txContext, p *Port, frame []byte) {
	sp.mu.Lock()
	if len(sp.pending)+4+len(frame) > maxStreamPending {
		sp.mu.Unlock()
		tx.fail(p, len(frame), true)
		return
	}
	sp.pending = binary.BigEndian.AppendUint32(sp.pending, uint32(len(frame)))
	sp.pending = append(sp.pending, frame...)
	sp.mu.Unlock()
	select {
	case sp.kick <- struct{}{}:
	default:
	}
}

func (sp *streamPort) close() error { return sp.c.Close() }

func (sp *streamPort) closePort(*Port) { _ = sp.c.Close() }

func (sp *streamPort) writer() {
	var buf []byte
	for {
		select {
		case <-sp.done:
			return
		case <-sp.kick:
		}
		sp.mu.Lock()
		buf, sp.pending = sp.pending, buf[:0]
		sp.mu.Unlock()
		if len(buf) > 0 {
			if _, err := sp.c.Write(buf); err != nil {
				sp.c.Close() // the reader sees it and removes the port
				return
			}
		}
	}
}

func (sp *streamPort) reader() {
	sw := sp.sw
	defer func() {
		close(sp.done)
		sw.removePort(sp.port, true)
		sp.c.Close()
	}()
	br := bufio.NewReaderSize(sp.c, 256<<10)
	tx := newTxContext(batchSize * 4)
	frame := make([]byte, MaxFrame)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > MaxFrame {
			return // a stream out of step cannot be resynchronised
		}
		if _, err := io.ReadFull(br, frame[:n]); err != nil {
			return
		}
		sw.mu.Lock()
		sw.ingress(tx, sp.port, frame[:n], sw.now())
		sw.mu.Unlock()
		// frame is reused for the next one: send now.
		sw.transmit(tx)
	}
}
