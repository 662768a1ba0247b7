//go:build linux

package vswitch

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/umlutils/umlutils/internal/mmsg"
)

type errno = unix.Errno

const (
	eagain      = unix.EAGAIN
	msgDontwait = unix.MSG_DONTWAIT
	// batchSize bounds one recvmmsg/sendmmsg batch. The kernel's default
	// net.unix.max_dgram_qlen (10) keeps real batches small; a larger
	// array costs nothing but memory.
	batchSize = 32
	// dataSockBuf is SO_SNDBUF/SO_RCVBUF for the shared data socket and
	// portSockBuf for each port's: a datagram stays charged to the
	// sender's buffer until the peer reads it; per port, a slow peer can
	// only use up its own.
	dataSockBuf = 4 << 20
	portSockBuf = 2 << 20
	// requestTimeout bounds how long a fresh control connection may take
	// to send its request (a UML sends it at once).
	requestTimeout = 5 * time.Second
)

// DaemonConfig configures the UML daemon transport.
type DaemonConfig struct {
	// Control is the control socket's path (the C switch's default is
	// /tmp/uml.ctl).
	Control string
	// Data is a path for the data socket; empty binds an abstract name,
	// which leaves no file behind. Protocol 0 clients (-compat-v0) need a
	// path because they get no reply naming it.
	Data string
	// Mode, if non-zero, is chmod'ed onto the control socket file.
	Mode os.FileMode
	// Group, if >= 0, becomes the control socket file's group.
	Group int
}

// SocketInUseError: another switch answers on the socket path.
type SocketInUseError struct{ Path string }

func (e *SocketInUseError) Error() string {
	return fmt.Sprintf("%s: socket is in use by another server", e.Path)
}

// daemon is the daemon transport: a control listener and the shared data
// socket.
type daemon struct {
	sw       *Switch
	cfg      DaemonConfig
	ctl      *net.UnixListener
	dataFD   int
	closing  atomic.Bool
	started  atomic.Bool
	loopDone chan struct{}
	dataAddr [mmsg.SizeofSockaddrUnix]byte // raw, as sent in replies
	byAddr   map[string]*Port              // under sw.mu
	// epfd watches the shared and every port's data socket; byToken
	// finds a port by its epoll token (under sw.mu).
	epfd      int
	byToken   map[int32]*Port
	nextToken atomic.Int32
	// conns are the control connections being served; close ends them
	// all, so no handshake outlives Run.
	connMu    sync.Mutex
	conns     map[*net.UnixConn]struct{}
	shutting  bool
	ctlClosed bool
	shutDown  bool // the data socket is shut down (close)
	released  bool // and closed (release)
}

// track records a control connection; false once the daemon is closing.
func (d *daemon) track(c *net.UnixConn) bool {
	d.connMu.Lock()
	defer d.connMu.Unlock()
	if d.shutting {
		return false
	}
	d.conns[c] = struct{}{}
	return true
}

func (d *daemon) untrack(c *net.UnixConn) {
	d.connMu.Lock()
	delete(d.conns, c)
	d.connMu.Unlock()
}

// ListenDaemon creates the control socket (replacing a stale one nobody
// listens on; one in use is a *SocketInUseError) and the data socket.
func (sw *Switch) ListenDaemon(cfg DaemonConfig) error {
	d := &daemon{sw: sw, cfg: cfg, byAddr: map[string]*Port{}, byToken: map[int32]*Port{}, dataFD: -1, epfd: -1, loopDone: make(chan struct{}), conns: map[*net.UnixConn]struct{}{}}
	if err := d.listen(); err != nil {
		d.close()
		d.release()
		return err
	}
	sw.mu.Lock()
	sw.servers = append(sw.servers, d)
	sw.mu.Unlock()
	return nil
}

// clearStale removes a socket file nobody listens on. A file that is no
// socket is left alone (the C switch would delete it).
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s: exists and is not a socket", path)
	}
	for _, network := range []string{"unix", "unixgram", "unixpacket"} {
		c, err := net.DialTimeout(network, path, time.Second)
		if err == nil {
			c.Close()
			return &SocketInUseError{Path: path}
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EPROTOTYPE) {
			return fmt.Errorf("%s: checking for a live server: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("%s: removing stale socket: %w", path, err)
	}
	return nil
}

// SocketConfig is where a listening socket goes and who may connect: the
// management socket (ListenManagement) and the bess and stream transports'
// sockets (ListenBess, ListenStream). DaemonConfig has the same Mode and
// Group for the control socket.
type SocketConfig struct {
	// Path is the socket file's path. A stale socket there (nobody
	// listens) is replaced; a live one is a *SocketInUseError.
	Path string
	// Mode, if non-zero, is chmod'ed onto the socket file.
	Mode os.FileMode
	// Group, if >= 0, becomes the socket file's group.
	Group int
}

// listenUnix listens on a Unix socket of the given kind ("unix",
// "unixpacket") at s.Path, after clearing a stale socket file, and applies
// s.Mode and s.Group to the file.
func listenUnix(network string, s SocketConfig) (*net.UnixListener, error) {
	if err := clearStale(s.Path); err != nil {
		return nil, err
	}
	l, err := net.ListenUnix(network, &net.UnixAddr{Name: s.Path, Net: network})
	if err != nil {
		return nil, err
	}
	if s.Mode != 0 {
		if err := os.Chmod(s.Path, s.Mode); err != nil {
			l.Close()
			return nil, err
		}
	}
	if s.Group >= 0 {
		if err := os.Lchown(s.Path, -1, s.Group); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// acceptBackoff is how long an accept loop waits after a failed accept
// before it tries again.
const acceptBackoff = 50 * time.Millisecond

// acceptLoop hands each connection l accepts to handle, on the calling
// goroutine, until l is closed or ctx is done. A failed accept on a
// listening Unix socket is a shortage that passes (EMFILE, ENFILE,
// ENOBUFS, ENOMEM: accept(2)); the loop backs off and keeps the listener,
// rather than ending Run and with it every guest's port.
func acceptLoop(ctx context.Context, l *net.UnixListener, handle func(*net.UnixConn)) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(acceptBackoff)
			continue
		}
		handle(c)
	}
}

func (d *daemon) listen() error {
	l, err := listenUnix("unix", SocketConfig{Path: d.cfg.Control, Mode: d.cfg.Mode, Group: d.cfg.Group})
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	d.ctl = l
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("data socket: %w", err)
	}
	d.dataFD = fd
	binary.LittleEndian.PutUint16(d.dataAddr[:], unix.AF_UNIX)
	if d.cfg.Data != "" {
		if len(d.cfg.Data) >= 108 {
			return fmt.Errorf("data socket %s: path longer than 107 bytes", d.cfg.Data)
		}
		if err := clearStale(d.cfg.Data); err != nil {
			return fmt.Errorf("data socket: %w", err)
		}
		copy(d.dataAddr[2:], d.cfg.Data)
	} else {
		// An abstract name of the full 108 bytes: UMLs send to the
		// whole sockaddr_un they got in the reply. Random bytes after
		// the NUL play the part of the C switch's pid/time.
		var r [12]byte
		_, _ = rand.Read(r[:])
		copy(d.dataAddr[3:], "uml_switch.")
		copy(d.dataAddr[14:], r[:])
	}
	if err := mmsg.Bind(fd, d.dataAddr[:]); err != nil {
		return fmt.Errorf("data socket %s: %w", d.peerName(d.dataAddr[:]), err)
	}
	setBufs(fd, dataSockBuf)
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("data socket: epoll: %w", err)
	}
	d.epfd = epfd
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: sharedToken}); err != nil {
		return fmt.Errorf("data socket: epoll: %w", err)
	}
	return nil
}

func (d *daemon) peerName(raw []byte) string {
	if len(raw) <= 2 {
		return "(unnamed)"
	}
	p := raw[2:]
	if p[0] != 0 {
		return string(sockKey(raw)[2:])
	}
	// Abstract: show it like ss(8), with non-printing bytes escaped.
	var b strings.Builder
	b.WriteByte('@')
	end := len(p)
	for end > 1 && p[end-1] == 0 {
		end--
	}
	for _, c := range p[1:end] {
		if c >= 0x21 && c < 0x7f {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	return b.String()
}

func (d *daemon) close() error {
	var err error
	if d.ctl != nil && !d.ctlClosed {
		// d.ctl itself stays: serve's accept loop reads it.
		d.ctlClosed = true
		err = d.ctl.Close() // removes the socket file (net unlinks on close)
	}
	d.connMu.Lock()
	d.shutting = true
	for c := range d.conns {
		c.Close()
	}
	d.connMu.Unlock()
	d.closing.Store(true)
	if d.dataFD >= 0 && !d.shutDown {
		// Shutting the socket down ends the receiving thread's
		// recvmmsg; other forwarders may still send on it (and fail)
		// until release closes it, once Run has stopped them, so the
		// descriptor number cannot be reused under anyone.
		d.shutDown = true
		_ = unix.Shutdown(d.dataFD, unix.SHUT_RDWR)
		if d.started.Load() {
			<-d.loopDone
		}
	}
	if d.cfg.Data != "" {
		_ = os.Remove(d.cfg.Data)
	}
	return err
}

// setBufs sets a socket's send and receive buffers, beyond the system's
// maximum when we may.
func setBufs(fd, n int) {
	if os.Geteuid() == 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	} else {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, n)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n)
	}
}

// release closes the data socket; Run calls it once nothing forwards.
func (d *daemon) release() {
	if !d.released {
		d.released = true
		if d.dataFD >= 0 {
			_ = unix.Close(d.dataFD)
		}
		if d.epfd >= 0 {
			_ = unix.Close(d.epfd)
		}
	}
}

func (d *daemon) serve(ctx context.Context) error {
	errc := make(chan error, 1)
	d.started.Store(true)
	go func() { errc <- d.dataLoop(); close(d.loopDone) }()
	acceptLoop(ctx, d.ctl, func(c *net.UnixConn) {
		if !d.track(c) || !d.sw.spawn(func() { d.handleControl(c) }) {
			d.untrack(c)
			c.Close()
		}
	})
	<-errc
	return nil
}

// handleControl reads one request, makes a port and then watches the
// control stream: the port lives as long as the stream.
func (d *daemon) handleControl(c *net.UnixConn) {
	defer d.untrack(c)
	defer c.Close()
	// The id is held from accept on, as the C switch's descriptor is; the
	// port takes it over, and removing the port frees it.
	id := d.sw.reserveID()
	var req Request
	buf := make([]byte, MaxRequestLen+1)
	n, err := readRequest(c, buf)
	if err == nil {
		err = req.UnmarshalBinary(buf[:n])
	}
	if err != nil {
		d.sw.releaseID(id)
		d.sw.event(queuedEvent{kind: RequestRejected, port: -1, err: err})
		return
	}
	slack := MaxRequestLen - n
	p := &Port{ID: id, Transport: TransportDaemon, Peer: d.peerName(req.Sock[:]), tr: d, conn: c,
		key: string(sockKey(req.Sock[:])), sendAddr: append([]byte(nil), req.Sock[:]...), dfd: -1}
	identify(p, c, req.Sock[:])
	addr, err := d.openPortSocket(p)
	if err != nil {
		d.sw.releaseID(id)
		d.sw.event(queuedEvent{kind: RequestRejected, port: -1, err: err})
		return
	}
	// Register before replying: the UML may send its first frame as soon
	// as it has the reply.
	if err := d.sw.addPort(p); err != nil {
		d.closePortSocket(p)
		return
	}
	d.sw.mu.Lock()
	old := d.byAddr[p.key]
	d.byAddr[p.key] = p
	d.byToken[p.dtoken] = p
	d.sw.mu.Unlock()
	if old != nil {
		// The same data socket registered again: the newer request wins.
		d.sw.removePort(old, true)
	}
	if err := unix.EpollCtl(d.epfd, unix.EPOLL_CTL_ADD, p.dfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: p.dtoken}); err != nil {
		d.sw.event(queuedEvent{kind: RequestRejected, port: -1, err: fmt.Errorf("data socket: epoll: %w", err)})
		d.forget(p)
		return
	}
	if req.Version != 0 {
		if _, err := c.Write(addr); err != nil {
			d.sw.event(queuedEvent{kind: RequestRejected, port: -1, err: fmt.Errorf("replying: %w", err)})
			d.forget(p)
			return
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	var scratch [512]byte
	for {
		n, err := c.Read(scratch[:])
		if n > 0 {
			// The tail padding of a request may straggle in; anything
			// more is a protocol error that costs this port only.
			if n > slack || !allZero(scratch[:n]) {
				break
			}
			slack -= n
		}
		if err != nil {
			break
		}
	}
	d.forget(p)
}

// forget removes a daemon port and its address mapping (unless a newer
// registration of the same data socket took the address over).
func (d *daemon) forget(p *Port) {
	d.sw.mu.Lock()
	if d.byAddr[p.key] == p {
		delete(d.byAddr, p.key)
	}
	delete(d.byToken, p.dtoken)
	d.sw.mu.Unlock()
	d.sw.removePort(p, true)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readRequest reads until the request in buf is complete (by requestNeed), an
// error is certain, or requestTimeout passes.
func readRequest(c *net.UnixConn, buf []byte) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(requestTimeout))
	n := 0
	for {
		m, err := c.Read(buf[n:])
		n += m
		if n > MaxRequestLen {
			return n, ErrOversizeRequest
		}
		need := requestNeed(buf[:n])
		if need == 0 || (n >= need && n >= 8) {
			// Give padding that is already on its way a moment.
			return n, nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) {
				return n, ErrShortRequest
			}
			return n, err
		}
	}
}

// Per-port data sockets. The reply to a request names a datagram socket
// of the switch's own for that port alone. Measured against one data
// socket shared by all ports:
//   - every guest sends into its own queue. With one shared queue (the
//     kernel holds at most net.unix.max_dgram_qlen, 10, datagrams from
//     senders the receiver is not connected to), a port flooding as fast
//     as the switch reads kept it full, and a UML guest, whose sends do
//     not wait, lost 62 of 100 pings to another guest;
//   - one sender per queue: a dequeue wakes only that sender, not every
//     guest blocked on the shared queue.
// The sockets stay unconnected: connected to its guest, a port's queue
// would be bounded by the guest's send buffer instead of 10 datagrams,
// and 64 generator threads filling theirs left the switch's thread no
// CPU on two cores (64-port rate fell to a quarter). So each frame's
// sender is checked against the port's guest here, and sends name it.
// The price is one sendmmsg per destination port and batch, which matters
// for floods (bounded by storm control in switch mode) and hubs.
// One thread waits on all of them with epoll and takes at most batchSize
// frames from each ready port per round, so ports are served in turn
// whatever one of them sends.

// openPortSocket makes p's data socket, bound to a fresh abstract name,
// and returns the name for the reply.
func (d *daemon) openPortSocket(p *Port) ([]byte, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("data socket: %w", err)
	}
	addr := make([]byte, mmsg.SizeofSockaddrUnix)
	binary.LittleEndian.PutUint16(addr, unix.AF_UNIX)
	var r [12]byte
	_, _ = rand.Read(r[:])
	copy(addr[3:], "uml_switch.")
	copy(addr[14:], r[:])
	if err := mmsg.Bind(fd, addr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("data socket: %w", err)
	}
	// What the port's guest has not read yet is charged to this
	// buffer. A UML reads at most net.unix.max_dgram_qlen (10) behind;
	// a peer connected to this socket (as swload's clients are) may fall
	// further behind, up to this.
	setBufs(fd, portSockBuf)
	p.dfd = fd
	p.dtoken = d.nextToken.Add(1)
	return addr, nil
}

// closePortSocket closes p's data socket once no one is using it.
func (d *daemon) closePortSocket(p *Port) {
	p.dfdMu.Lock()
	if p.dfd >= 0 {
		unix.Close(p.dfd) // also leaves the epoll set
		p.dfd = -1
	}
	p.dfdMu.Unlock()
}

// sharedToken is the epoll token of the shared data socket (protocol 0
// clients, which get no reply, send there).
const sharedToken = 0

// dataLoop waits for datagrams on every data socket and forwards them. It
// blocks in epoll_wait on a dedicated thread rather than going through
// Go's poller: the sockets wake this thread directly, as poll(2) wakes the
// C switch, which measurably cuts round-trip latency. A timeout lets it
// notice shutdown; shutting the shared socket down wakes it at once.
func (d *daemon) dataLoop() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	batch := mmsg.NewRecvBatch(batchSize, MaxFrame+1)
	tx := newTxContext(batchSize * 4)
	events := make([]unix.EpollEvent, 128)
	ready := make([]*Port, 0, len(events))
	var paused []*Port
	sw := d.sw
	for {
		timeout := 200
		if len(paused) > 0 {
			timeout = 1
		}
		n, err := epollWaitRaw(d.epfd, events, timeout)
		if d.closing.Load() {
			return nil
		}
		if len(paused) > 0 {
			paused = d.resume(paused)
		}
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("data sockets: epoll: %w", err)
		}
		ready = ready[:0]
		shared := false
		sw.mu.Lock()
		for _, ev := range events[:n] {
			if ev.Fd == sharedToken {
				shared = true
			} else if p := d.byToken[ev.Fd]; p != nil {
				ready = append(ready, p)
			}
		}
		sw.mu.Unlock()
		for _, p := range ready {
			if d.receivePort(p, batch, tx) {
				paused = d.pause(p, paused)
			}
		}
		if shared {
			d.receiveShared(batch, tx)
		}
	}
}

// receivePort forwards up to batchSize frames from p's data socket. It
// reports whether p is over its storm-control rate and should rest.
func (d *daemon) receivePort(p *Port, batch *mmsg.RecvBatch, tx *txContext) (storming bool) {
	sw := d.sw
	p.dfdMu.RLock()
	if p.dfd < 0 {
		p.dfdMu.RUnlock()
		return false
	}
	n, err := batch.RecvRaw(p.dfd, 0, unix.MSG_DONTWAIT)
	p.dfdMu.RUnlock()
	if err != nil || n == 0 {
		// EAGAIN (raced), or the guest's socket is gone
		// (ECONNRESET...): its control stream ends the port.
		return false
	}
	sw.mu.Lock()
	now := sw.now()
	before := p.c.Drops[DropStorm]
	for i := 0; i < n; i++ {
		if string(sockKey(batch.Name(i))) != p.key {
			sw.unregistered++ // not the port's guest
			continue
		}
		if batch.Truncated(i) {
			p.c.Drops[DropOversize]++
			continue
		}
		sw.ingress(tx, p, batch.Frame(i), now)
	}
	storming = p.c.Drops[DropStorm] != before
	if storming {
		p.restUntil = now + stormRest(p.stormRate)
	}
	sw.mu.Unlock()
	sw.transmit(tx)
	return storming
}

// stormRest is how long a port that went over its storm-control rate is
// not read: until its bucket holds a few frames again. Its frames wait in
// its own queue meanwhile, and when that is full its sender waits (or
// drops), instead of the switch spending a core receiving frames only to
// drop them — CPU the other guests need, on a small host.
func stormRest(rate int) int64 {
	if rate <= 0 {
		return 0
	}
	d := int64(8) * int64(time.Second) / int64(rate)
	return min(max(d, int64(time.Millisecond)), int64(50*time.Millisecond))
}

// pause takes p out of the epoll set until its rest is over.
func (d *daemon) pause(p *Port, paused []*Port) []*Port {
	p.dfdMu.RLock()
	defer p.dfdMu.RUnlock()
	if p.dfd < 0 || p.resting {
		return paused
	}
	if unix.EpollCtl(d.epfd, unix.EPOLL_CTL_MOD, p.dfd, &unix.EpollEvent{Events: 0, Fd: p.dtoken}) != nil {
		return paused
	}
	p.resting = true
	return append(paused, p)
}

// resume puts back the paused ports whose rest is over and returns the
// others.
func (d *daemon) resume(paused []*Port) []*Port {
	now := d.sw.now()
	kept := paused[:0]
	for _, p := range paused {
		d.sw.mu.Lock()
		until := p.restUntil
		d.sw.mu.Unlock()
		if now < until {
			kept = append(kept, p)
			continue
		}
		p.dfdMu.RLock()
		if p.dfd >= 0 {
			_ = unix.EpollCtl(d.epfd, unix.EPOLL_CTL_MOD, p.dfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: p.dtoken})
		}
		p.dfdMu.RUnlock()
		p.resting = false
	}
	for i := len(kept); i < len(paused); i++ {
		paused[i] = nil
	}
	return kept
}

// receiveShared forwards a batch from the shared data socket, where each
// sender is looked up by its address.
func (d *daemon) receiveShared(batch *mmsg.RecvBatch, tx *txContext) {
	sw := d.sw
	n, err := batch.RecvRaw(d.dataFD, 0, unix.MSG_DONTWAIT)
	if err != nil || n == 0 {
		return
	}
	sw.mu.Lock()
	now := sw.now()
	for i := 0; i < n; i++ {
		p := d.byAddr[string(sockKey(batch.Name(i)))]
		if p == nil {
			sw.unregistered++
			continue
		}
		if batch.Truncated(i) {
			p.c.Drops[DropOversize]++
			continue
		}
		sw.ingress(tx, p, batch.Frame(i), now)
	}
	sw.mu.Unlock()
	sw.transmit(tx)
}

// epollWaitRaw is epoll_wait without telling the Go scheduler (see
// mmsg.RecvBatch.RecvRaw: the thread is dedicated, the timeout bounded,
// and the runtime's preemption signal interrupts it with EINTR).
func epollWaitRaw(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// closePort ends the port's control connection, which its handler is
// reading (that is how Run's shutdown reaches every handler), and closes
// its data socket.
func (d *daemon) closePort(p *Port) {
	_ = p.conn.Close()
	d.closePortSocket(p)
}

// send queues frame for the port's guest, from the port's own data socket
// to exactly the address the guest registered.
func (d *daemon) send(tx *txContext, p *Port, frame []byte) {
	if tx.dgram.Full() || (tx.dgram.Len() > 0 && tx.dport != p) {
		tx.flushDgram()
	}
	tx.dport = p
	i := tx.dgram.Add(p.sendAddr, frame)
	tx.dports[i] = p
	tx.bytes[i] = len(frame)
}
