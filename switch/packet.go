//go:build linux

package vswitch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/umlutils/umlutils/tuntap"
)

// packetPort is a port whose descriptor carries one whole frame per
// read/write: a tap device (IFF_TAP|IFF_NO_PI), and later a SOCK_SEQPACKET
// connection. Sends are non-blocking writes; EAGAIN drops the frame.
type packetPort struct {
	sw   *Switch
	f    *os.File
	rc   syscall.RawConn
	port *Port
}

// AddTap attaches the tap device name as a port (docs/protocols.md §7): an
// existing tap is opened, a missing one created non-persistent (needs
// CAP_NET_ADMIN). Unlike the C switch, failure is an error.
func (sw *Switch) AddTap(name string) (*Port, error) {
	f, err := tuntap.OpenTap(name)
	if err != nil {
		return nil, fmt.Errorf("tap device %s: %w", name, err)
	}
	return sw.AddPacketPort(TransportTap, "tap:"+name, f)
}

// AddPacketPort attaches f, a non-blocking descriptor that carries one frame
// per read and write, as a port of transport t (a tap device opened by the
// caller: TransportTap). The switch owns f from now on: while the switch
// stops, the port is refused (ErrStopping) and f closed.
func (sw *Switch) AddPacketPort(t Transport, peer string, f *os.File) (*Port, error) {
	return sw.addPacketPort(t, f, &Port{Peer: peer})
}

func (sw *Switch) addPacketPort(t Transport, f *os.File, who *Port) (*Port, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	pp := &packetPort{sw: sw, f: f, rc: rc}
	p := &Port{ID: sw.reserveID(), Transport: t, Peer: who.Peer, PeerPID: who.PeerPID, UMID: who.UMID, PeerAddr: who.PeerAddr, tr: pp}
	pp.port = p
	sw.mu.Lock()
	running := sw.running
	if !running {
		sw.servers = append(sw.servers, pp)
	}
	sw.mu.Unlock()
	if err := sw.addPort(p); err != nil {
		f.Close()
		return nil, err
	}
	if running && !sw.spawn(func() { _ = pp.serve(context.Background()) }) {
		sw.removePort(p, false)
		return nil, ErrStopping
	}
	return p, nil
}

func (pp *packetPort) send(tx *txContext, p *Port, frame []byte) {
	var werr error
	err := pp.rc.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), frame)
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		tx.fail(p, len(frame), errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOBUFS))
	}
}

func (pp *packetPort) close() error { return pp.f.Close() }

func (pp *packetPort) closePort(*Port) { _ = pp.f.Close() }

// serve reads frames until the descriptor fails or is closed, then removes
// the port. A failing descriptor costs only its port (reported with the
// PortRemoved event), never the switch: deleting a tap device under a
// running switch must not drop every guest.
func (pp *packetPort) serve(ctx context.Context) error {
	sw := pp.sw
	const n = 16
	bufs := make([][]byte, n)
	lens := make([]int, n)
	for i := range bufs {
		bufs[i] = make([]byte, MaxFrame+1)
	}
	tx := newTxContext(batchSize * 4)
	defer func() {
		sw.removePort(pp.port, true)
		_ = pp.f.Close()
	}()
	for {
		got := 0
		var rerr error
		err := pp.rc.Read(func(fd uintptr) bool {
			for got < n {
				m, err := unix.Read(int(fd), bufs[got])
				if err != nil {
					if err != unix.EAGAIN {
						rerr = err
					}
					break
				}
				if m == 0 {
					// End of a bess peer's stream; what came before
					// it in this round is forwarded first.
					if got == 0 {
						rerr = errEOF
					}
					break
				}
				lens[got] = m
				got++
			}
			return got > 0 || rerr != nil
		})
		if err != nil {
			return nil
		}
		if got > 0 {
			sw.mu.Lock()
			now := sw.now()
			for i := 0; i < got; i++ {
				if lens[i] > MaxFrame {
					pp.port.c.Drops[DropOversize]++
					continue
				}
				sw.ingress(tx, pp.port, bufs[i][:lens[i]], now)
			}
			sw.mu.Unlock()
			sw.transmit(tx)
		}
		if rerr != nil && rerr != unix.EINTR {
			if rerr != errEOF {
				sw.mu.Lock()
				pp.port.failure = fmt.Errorf("%s: %w", pp.port.Peer, rerr)
				sw.mu.Unlock()
			}
			return nil
		}
	}
}

var errEOF = errors.New("end of stream")
