//go:build linux

package vswitch

// VXLAN uplinks (RFC 7348): a collision domain that spans hosts over the
// standard overlay Linux's own vxlan devices, Open vSwitch and EVPN fabrics
// speak. An uplink is one port of the switch backed by a UDP socket; behind
// it are the remote endpoints (VTEPs), each another uml_switch or a kernel
// vxlan device on another host.
//
//   - Frames the switch floods to the uplink (broadcast, multicast, unknown
//     unicast) go to every remote: head-end replication, as a Linux vxlan
//     device with several all-zeros FDB entries does.
//   - The uplink learns which remote each inner source address came from,
//     so a unicast frame the switch hands it goes to that remote only.
//   - A frame from a remote never goes to another remote (split horizon):
//     all remotes are one port, and the switch never sends a frame back out
//     of the port it came in on. A full mesh of hosts needs this, or
//     three hosts loop a broadcast for ever.
//   - Datagrams are accepted from configured remotes only, matched by source
//     address alone: Linux sends from a source port hashed over the inner
//     flow (RFC 7348 section 5 recommends it), so the port differs from
//     the one frames are sent to.
//
// The header is RFC 7348's 8 bytes: flags (the I flag, 0x08, says the VNI
// is valid and must be set), 24 reserved bits, the 24-bit VNI, 8 reserved
// bits. Reserved bits are ignored on receipt and sent as zero.
//
// Encapsulation adds 50 bytes to the inner frame over IPv4 (outer IPv4 20,
// UDP 8, VXLAN 8, inner Ethernet header 14) and 70 over IPv6: a guest's
// 1500-byte IP packet does not fit a 1500-byte underlay. The socket sets
// "don't fragment" (IP_PMTUDISC_DO), so a frame too big for the path is
// refused by the kernel and counted as an oversize drop, never sent in
// fragments; guests on a spanning domain use MTU 1450 (1430 over IPv6).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/umlutils/umlutils/internal/mmsg"
)

const (
	// VXLANPort is the IANA-assigned VXLAN port (RFC 7348 section 5).
	// Linux's vxlan devices default to 8472, the port the kernel used
	// before the assignment; set dstport 4789 on them, or name port 8472
	// in our remotes.
	VXLANPort = 4789
	// VXLANHeaderLen is the VXLAN header's size.
	VXLANHeaderLen = 8
	// MaxVNI is the largest 24-bit VXLAN network identifier.
	MaxVNI = 1<<24 - 1
	// VXLANOverhead4 and VXLANOverhead6 are what encapsulation adds to a
	// guest's IP packet (outer IP, UDP, VXLAN, inner Ethernet header):
	// the guest's MTU must be the underlay's MTU minus this.
	VXLANOverhead4 = 20 + 8 + VXLANHeaderLen + 14
	VXLANOverhead6 = 40 + 8 + VXLANHeaderLen + 14

	vxlanFlagI = 0x08
)

// Errors of ParseVXLAN.
var (
	ErrVXLANTruncated = errors.New("vxlan: datagram shorter than the 8-byte header")
	ErrVXLANNoVNI     = errors.New("vxlan: I flag not set (no valid VNI)")
)

// ParseVXLAN returns the VNI and the inner frame of a VXLAN datagram's
// payload. Reserved bits and flags other than I are ignored, as RFC 7348
// section 5 says receivers must.
func ParseVXLAN(b []byte) (vni uint32, frame []byte, err error) {
	if len(b) < VXLANHeaderLen {
		return 0, nil, ErrVXLANTruncated
	}
	if b[0]&vxlanFlagI == 0 {
		return 0, nil, ErrVXLANNoVNI
	}
	vni = uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
	return vni, b[VXLANHeaderLen:], nil
}

// AppendVXLANHeader appends a VXLAN header for vni (I flag set, reserved
// bits zero) to b.
func AppendVXLANHeader(b []byte, vni uint32) []byte {
	return append(b, vxlanFlagI, 0, 0, 0, byte(vni>>16), byte(vni>>8), byte(vni), 0)
}

// VXLANConfig configures one uplink.
type VXLANConfig struct {
	// VNI is the segment's 24-bit identifier.
	VNI uint32
	// Local is the address and UDP port the uplink's socket binds;
	// port 0 lets the kernel pick one (see VXLANInfo.Local).
	Local netip.AddrPort
	// Remotes are the other endpoints; more can be added at run time.
	Remotes []netip.AddrPort
}

// SpecError is a -vxlan specification or endpoint that does not parse.
type SpecError struct {
	Spec   string
	Reason string
}

func (e *SpecError) Error() string { return fmt.Sprintf("vxlan %q: %s", e.Spec, e.Reason) }

// ParseVXLANSpec reads "vni=N,local=ADDR[:PORT],remote=ADDR[:PORT][,remote=...]".
// A missing port is VXLANPort; IPv6 addresses with a port are written
// [ADDR]:PORT.
func ParseVXLANSpec(spec string) (VXLANConfig, error) {
	var c VXLANConfig
	bad := func(format string, a ...any) (VXLANConfig, error) {
		return VXLANConfig{}, &SpecError{Spec: spec, Reason: fmt.Sprintf(format, a...)}
	}
	haveVNI, haveLocal := false, false
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return bad("%q is not key=value", kv)
		}
		switch k {
		case "vni":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n > MaxVNI {
				return bad("vni %q is not a number from 0 to %d", v, MaxVNI)
			}
			if haveVNI {
				return bad("vni given twice")
			}
			c.VNI, haveVNI = uint32(n), true
		case "local":
			ap, err := parseEndpoint(v, true)
			if err != nil {
				return bad("local %v", err)
			}
			if haveLocal {
				return bad("local given twice")
			}
			c.Local, haveLocal = ap, true
		case "remote":
			ap, err := parseEndpoint(v, false)
			if err != nil {
				return bad("remote %v", err)
			}
			c.Remotes = append(c.Remotes, ap)
		default:
			return bad("unknown key %q (vni, local, remote)", k)
		}
	}
	if !haveVNI || !haveLocal {
		return bad("needs vni= and local=")
	}
	for _, r := range c.Remotes {
		if r.Addr().Is4() != c.Local.Addr().Is4() {
			return bad("remote %s and local %s are of different address families", r, c.Local)
		}
	}
	return c, nil
}

// ParseVXLANEndpoint reads a remote endpoint, ADDR[:PORT] or [ADDR]:PORT;
// the port defaults to VXLANPort.
func ParseVXLANEndpoint(s string) (netip.AddrPort, error) {
	ap, err := parseEndpoint(s, false)
	if err != nil {
		return ap, &SpecError{Spec: s, Reason: err.Error()}
	}
	return ap, nil
}

func parseEndpoint(s string, local bool) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		a, err2 := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
		if err2 != nil {
			return ap, fmt.Errorf("%q is not ADDR[:PORT]", s)
		}
		ap = netip.AddrPortFrom(a, VXLANPort)
	}
	a := ap.Addr().Unmap()
	if a.Zone() != "" {
		return ap, fmt.Errorf("%q: zones are not supported", s)
	}
	if a.IsMulticast() {
		return ap, fmt.Errorf("%q: multicast underlays are not supported; list the remotes", s)
	}
	if !local && (a.IsUnspecified() || ap.Port() == 0) {
		return ap, fmt.Errorf("%q: a remote needs an address and a port", s)
	}
	return netip.AddrPortFrom(a, ap.Port()), nil
}

// vxlanRemote is one remote endpoint and its counters.
type vxlanRemote struct {
	addr                                 netip.AddrPort
	sa                                   []byte // raw sockaddr_in or sockaddr_in6
	rxFrames, rxBytes, txFrames, txBytes atomic.Uint64
	drops                                [numVXLANDrops]atomic.Uint64
}

// Per-remote drop reasons.
const (
	vxDropWrongVNI  = iota // a VXLAN header with another VNI
	vxDropMalformed        // no I flag, shorter than a header, or an inner frame shorter than 14 bytes
	vxDropOversize         // received truncated, or refused by the kernel as too big for the path (EMSGSIZE)
	vxDropSendError        // the kernel refused the send for another reason (full buffer, no route)
	numVXLANDrops
)

var vxlanDropNames = [numVXLANDrops]string{"wrong_vni", "malformed", "oversize", "send_error"}

// remoteSet is an immutable set of remotes, swapped whole on changes so
// that the receive and send paths read it without a lock.
type remoteSet struct {
	list   []*vxlanRemote
	byAddr map[netip.Addr]*vxlanRemote
}

type fdbEnt struct {
	r    *vxlanRemote
	seen int64
}

// vxlanUplink is a VXLAN port: a server (its receive loop) and the port's
// transport.
type vxlanUplink struct {
	sw    *Switch
	vni   uint32
	local netip.AddrPort
	v6    bool
	fd    int
	hdr   [VXLANHeaderLen]byte
	port  *Port

	remotes  atomic.Pointer[remoteSet]
	editMu   sync.Mutex // serializes remote changes
	stranger atomic.Uint64

	// fdb maps inner source addresses to the remote they came from,
	// bounded by the switch's MAC table size.
	fdbMu  sync.Mutex
	fdb    map[[6]byte]fdbEnt
	fdbMax int

	closing  atomic.Bool
	started  atomic.Bool
	loopDone chan struct{}
	shutDown bool
	released bool
}

// ErrVXLANRunning: uplinks are attached before Run.
var ErrVXLANRunning = errors.New("vxlan uplinks must be added before the switch runs")

// AddVXLAN attaches a VXLAN uplink as a port: it binds cfg.Local (a UDP
// socket; no privilege needed above port 1023) and sends to cfg.Remotes.
// Call it before Run.
func (sw *Switch) AddVXLAN(cfg VXLANConfig) (*Port, error) {
	if cfg.VNI > MaxVNI {
		return nil, &SpecError{Spec: strconv.FormatUint(uint64(cfg.VNI), 10), Reason: "VNI over 24 bits"}
	}
	sw.mu.Lock()
	running := sw.running
	for _, s := range sw.servers {
		if u, ok := s.(*vxlanUplink); ok && u.local == cfg.Local && cfg.Local.Port() != 0 {
			sw.mu.Unlock()
			return nil, fmt.Errorf("vxlan %s: already the local endpoint of vni %d", cfg.Local, u.vni)
		}
	}
	sw.mu.Unlock()
	if running {
		return nil, ErrVXLANRunning
	}
	u := &vxlanUplink{sw: sw, vni: cfg.VNI, local: cfg.Local, v6: !cfg.Local.Addr().Is4(), fd: -1,
		fdb: map[[6]byte]fdbEnt{}, fdbMax: sw.cfg.MACTableSize, loopDone: make(chan struct{})}
	copy(u.hdr[:], AppendVXLANHeader(nil, cfg.VNI))
	u.remotes.Store(&remoteSet{byAddr: map[netip.Addr]*vxlanRemote{}})
	if err := u.open(); err != nil {
		u.release()
		return nil, fmt.Errorf("vxlan local %s: %w", cfg.Local, err)
	}
	for _, r := range cfg.Remotes {
		if err := u.addRemote(r); err != nil {
			u.release()
			return nil, err
		}
	}
	p := &Port{ID: sw.reserveID(), Transport: TransportVXLAN, Peer: fmt.Sprintf("vxlan:vni=%d,local=%s", u.vni, u.local), tr: u}
	u.port = p
	if err := sw.addPort(p); err != nil {
		u.release()
		return nil, err
	}
	sw.mu.Lock()
	sw.servers = append(sw.servers, u)
	sw.mu.Unlock()
	return p, nil
}

// vxlanSockBuf is SO_SNDBUF/SO_RCVBUF: room for bursts of a few thousand
// frames from the underlay while the receive loop is busy.
const vxlanSockBuf = 4 << 20

func (u *vxlanUplink) open() error {
	family := unix.AF_INET
	if u.v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return err
	}
	u.fd = fd
	var sa unix.Sockaddr
	if u.v6 {
		sa = &unix.SockaddrInet6{Port: int(u.local.Port()), Addr: u.local.Addr().As16()}
		// Never fragment: an oversize frame is an error to count.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1)
	} else {
		sa = &unix.SockaddrInet4{Port: int(u.local.Port()), Addr: u.local.Addr().As4()}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return err
	}
	if got, err := unix.Getsockname(fd); err == nil {
		switch a := got.(type) {
		case *unix.SockaddrInet4:
			u.local = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
		case *unix.SockaddrInet6:
			u.local = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
		}
	}
	if os.Geteuid() == 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, vxlanSockBuf)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, vxlanSockBuf)
	} else {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, vxlanSockBuf)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, vxlanSockBuf)
	}
	// Wake the blocking receiver now and then so it sees shutdown.
	return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
}

// rawSockaddr is ap as the kernel's sockaddr_in or sockaddr_in6; an IPv4
// remote of an IPv6 socket becomes a v4-mapped address.
func rawSockaddr(ap netip.AddrPort, v6 bool) []byte {
	if !v6 {
		b := make([]byte, unix.SizeofSockaddrInet4)
		binary.NativeEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], ap.Port())
		a := ap.Addr().As4()
		copy(b[4:], a[:])
		return b
	}
	b := make([]byte, unix.SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], ap.Port())
	a := ap.Addr().As16()
	copy(b[8:], a[:])
	return b
}

// sockaddrAddr is the address in a raw sockaddr_in or sockaddr_in6
// (v4-mapped addresses unmapped), or the zero Addr.
func sockaddrAddr(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}

// ErrVXLANRemoteExists and ErrVXLANNoRemote are errors of remote changes.
var (
	ErrVXLANRemoteExists = errors.New("remote address already configured")
	ErrVXLANNoRemote     = errors.New("no such remote")
	ErrVXLANNoUplink     = errors.New("no such vxlan uplink")
)

func (u *vxlanUplink) addRemote(ap netip.AddrPort) error {
	if ap.Addr().Is4() == u.v6 && !u.local.Addr().IsUnspecified() {
		return fmt.Errorf("vxlan remote %s: not of local %s's address family", ap, u.local)
	}
	u.editMu.Lock()
	defer u.editMu.Unlock()
	old := u.remotes.Load()
	if old.byAddr[ap.Addr()] != nil {
		// Matching is by source address: two remotes on one address
		// could not be told apart.
		return fmt.Errorf("vxlan remote %s: %w", ap, ErrVXLANRemoteExists)
	}
	r := &vxlanRemote{addr: ap, sa: rawSockaddr(ap, u.v6)}
	n := &remoteSet{list: append(append([]*vxlanRemote(nil), old.list...), r), byAddr: map[netip.Addr]*vxlanRemote{}}
	for _, x := range n.list {
		n.byAddr[x.addr.Addr()] = x
	}
	u.remotes.Store(n)
	return nil
}

// delRemote removes the remote at ap's address (and, if ap has a port, at
// that port only).
func (u *vxlanUplink) delRemote(ap netip.AddrPort) error {
	u.editMu.Lock()
	defer u.editMu.Unlock()
	old := u.remotes.Load()
	r := old.byAddr[ap.Addr()]
	if r == nil || r.addr.Port() != ap.Port() {
		return fmt.Errorf("vxlan remote %s: %w", ap, ErrVXLANNoRemote)
	}
	n := &remoteSet{byAddr: map[netip.Addr]*vxlanRemote{}}
	for _, x := range old.list {
		if x != r {
			n.list = append(n.list, x)
			n.byAddr[x.addr.Addr()] = x
		}
	}
	u.remotes.Store(n)
	u.fdbMu.Lock()
	for mac, e := range u.fdb {
		if e.r == r {
			delete(u.fdb, mac)
		}
	}
	u.fdbMu.Unlock()
	return nil
}

func (u *vxlanUplink) close() error {
	u.closing.Store(true)
	if u.fd >= 0 && !u.shutDown {
		// As the daemon's data socket: shut down now (the receive loop
		// ends), closed by release once nothing can send on it.
		u.shutDown = true
		_ = unix.Shutdown(u.fd, unix.SHUT_RDWR)
		if u.started.Load() {
			<-u.loopDone
		}
	}
	return nil
}

func (u *vxlanUplink) release() {
	if u.fd >= 0 && !u.released {
		u.released = true
		_ = unix.Close(u.fd)
	}
}

func (u *vxlanUplink) serve(ctx context.Context) error {
	u.started.Store(true)
	defer close(u.loopDone)
	err := u.recvLoop()
	if err != nil && !u.closing.Load() {
		// A failing socket costs this port, not the switch.
		u.sw.mu.Lock()
		u.port.failure = err
		u.sw.mu.Unlock()
		u.sw.removePort(u.port, true)
	}
	return nil
}

// recvLoop receives datagrams in batches on a dedicated thread, checks
// them outside the switch lock, learns where inner source addresses live,
// and forwards the good frames. Unlike the daemon's data loop it blocks
// through the scheduler (Recv, not RecvRaw): a second thread asleep in the
// kernel holding a P would leave a two-core machine's other goroutines
// (the daemon's, the management socket's) waiting for preemption.
func (u *vxlanUplink) recvLoop() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sw := u.sw
	batch := mmsg.NewRecvBatch(batchSize, VXLANHeaderLen+MaxFrame+1)
	tx := newTxContext(batchSize * 4)
	frames := make([][]byte, 0, batchSize)
	for {
		n, rerr := batch.Recv(u.fd, 0, unix.MSG_WAITFORONE)
		if u.closing.Load() {
			return nil
		}
		if rerr != nil {
			if rerr == unix.EAGAIN || rerr == unix.EINTR || rerr == unix.ENOMEM || rerr == unix.ENOBUFS || rerr == unix.ECONNREFUSED {
				continue
			}
			return fmt.Errorf("vxlan socket %s: %w", u.local, rerr)
		}
		set := u.remotes.Load()
		now := sw.now()
		frames = frames[:0]
		u.fdbMu.Lock()
		for i := 0; i < n; i++ {
			r := set.byAddr[sockaddrAddr(batch.Name(i))]
			if r == nil {
				u.stranger.Add(1)
				continue
			}
			if batch.Truncated(i) {
				r.drops[vxDropOversize].Add(1)
				continue
			}
			vni, frame, err := ParseVXLAN(batch.Frame(i))
			switch {
			case err != nil || len(frame) < MinFrame:
				r.drops[vxDropMalformed].Add(1)
				continue
			case vni != u.vni:
				r.drops[vxDropWrongVNI].Add(1)
				continue
			}
			r.rxFrames.Add(1)
			r.rxBytes.Add(uint64(len(frame)))
			if frame[6]&1 == 0 {
				u.learn([6]byte(frame[6:12]), r, now)
			}
			frames = append(frames, frame)
		}
		u.fdbMu.Unlock()
		if len(frames) == 0 {
			continue
		}
		sw.mu.Lock()
		if !u.port.removed {
			for _, f := range frames {
				sw.ingress(tx, u.port, f, now)
			}
		}
		sw.mu.Unlock()
		sw.transmit(tx)
	}
}

// learn records that src lives behind r. Caller holds u.fdbMu.
func (u *vxlanUplink) learn(src [6]byte, r *vxlanRemote, now int64) {
	if e, ok := u.fdb[src]; ok || len(u.fdb) < u.fdbMax {
		if !ok || e.r != r || now-e.seen > int64(u.sw.cfg.MACAge)/16 {
			u.fdb[src] = fdbEnt{r: r, seen: now}
		}
		return
	}
	// Full: forget expired entries, or any one (Go's map order is
	// random), so learning never stops; an address forgotten is only
	// flooded to every remote until it is seen again.
	evicted := 0
	for mac, e := range u.fdb {
		if now-e.seen > int64(u.sw.cfg.MACAge) || evicted == 0 {
			delete(u.fdb, mac)
			evicted++
		}
		if evicted >= 64 {
			break
		}
	}
	u.fdb[src] = fdbEnt{r: r, seen: now}
}

// vxlanSend is the scratch space of one sendmsg: two iovecs (header and
// frame) so that frames are never copied.
type vxlanSend struct {
	msg unix.Msghdr
	iov [2]unix.Iovec
}

var vxlanSendPool = sync.Pool{New: func() any { return new(vxlanSend) }}

// send encapsulates frame to the remote its destination was learned from,
// or to every remote (head-end replication). It never blocks: a full socket
// buffer drops the datagram, counted.
func (u *vxlanUplink) send(tx *txContext, p *Port, frame []byte) {
	set := u.remotes.Load()
	var one *vxlanRemote
	if frame[0]&1 == 0 {
		u.fdbMu.Lock()
		e, ok := u.fdb[[6]byte(frame[0:6])]
		u.fdbMu.Unlock()
		// Entries older than the switch's age are stale; a remote
		// removed since is no target.
		if ok && u.sw.now()-e.seen <= int64(u.sw.cfg.MACAge)+int64(u.sw.cfg.MACAge)/16 && set.byAddr[e.r.addr.Addr()] == e.r {
			one = e.r
		}
	}
	targets := set.list
	if one != nil {
		targets = []*vxlanRemote{one}
	}
	s := vxlanSendPool.Get().(*vxlanSend)
	s.iov[0].Base = &u.hdr[0]
	s.iov[0].SetLen(VXLANHeaderLen)
	s.iov[1].Base = &frame[0]
	s.iov[1].SetLen(len(frame))
	s.msg.Iov = &s.iov[0]
	s.msg.SetIovlen(2)
	sent, oversize, full := 0, false, false
	for _, r := range targets {
		s.msg.Name = &r.sa[0]
		s.msg.Namelen = uint32(len(r.sa))
		var e unix.Errno
		for {
			_, _, e = unix.Syscall(unix.SYS_SENDMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&s.msg)), unix.MSG_DONTWAIT)
			if e != unix.EINTR {
				break
			}
		}
		switch e {
		case 0:
			sent++
			r.txFrames.Add(1)
			r.txBytes.Add(uint64(len(frame)))
		case unix.EMSGSIZE:
			oversize = true
			r.drops[vxDropOversize].Add(1)
		default:
			full = full || e == unix.EAGAIN || e == unix.ENOBUFS
			r.drops[vxDropSendError].Add(1)
		}
	}
	*s = vxlanSend{}
	vxlanSendPool.Put(s)
	runtime.KeepAlive(frame)
	if sent > 0 {
		return
	}
	if oversize {
		u.sw.mu.Lock()
		p.c.TxFrames--
		p.c.TxBytes -= uint64(len(frame))
		p.c.Drops[DropOversize]++
		u.sw.mu.Unlock()
		return
	}
	// No remote, or every send refused.
	tx.fail(p, len(frame), full)
}

// VXLANRemoteInfo is a remote endpoint's counters.
type VXLANRemoteInfo struct {
	Remote            netip.AddrPort
	RxFrames, RxBytes uint64
	TxFrames, TxBytes uint64
	MACs              int               // inner addresses learned from it
	Drops             map[string]uint64 // wrong_vni, malformed, oversize, send_error
}

// VXLANInfo describes one uplink.
type VXLANInfo struct {
	VNI   uint32
	Port  int // the switch port (ports, macs)
	Local netip.AddrPort
	// StrangerDrops counts datagrams from addresses that are no remote.
	StrangerDrops uint64
	Remotes       []VXLANRemoteInfo
}

func (sw *Switch) uplinks() []*vxlanUplink {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	var out []*vxlanUplink
	for _, s := range sw.servers {
		if u, ok := s.(*vxlanUplink); ok {
			out = append(out, u)
		}
	}
	return out
}

// VXLAN lists the uplinks, by VNI and local endpoint.
func (sw *Switch) VXLAN() []VXLANInfo {
	var out []VXLANInfo
	now := sw.now()
	for _, u := range sw.uplinks() {
		set := u.remotes.Load()
		macs := map[*vxlanRemote]int{}
		u.fdbMu.Lock()
		for _, e := range u.fdb {
			if now-e.seen <= int64(sw.cfg.MACAge) {
				macs[e.r]++
			}
		}
		u.fdbMu.Unlock()
		vi := VXLANInfo{VNI: u.vni, Port: u.port.ID, Local: u.local, StrangerDrops: u.stranger.Load()}
		for _, r := range set.list {
			ri := VXLANRemoteInfo{Remote: r.addr, RxFrames: r.rxFrames.Load(), RxBytes: r.rxBytes.Load(),
				TxFrames: r.txFrames.Load(), TxBytes: r.txBytes.Load(), MACs: macs[r], Drops: map[string]uint64{}}
			for i, name := range vxlanDropNames {
				ri.Drops[name] = r.drops[i].Load()
			}
			vi.Remotes = append(vi.Remotes, ri)
		}
		sort.Slice(vi.Remotes, func(i, j int) bool { return vi.Remotes[i].Remote.Addr().Less(vi.Remotes[j].Remote.Addr()) })
		out = append(out, vi)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].VNI != out[j].VNI {
			return out[i].VNI < out[j].VNI
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// uplinkFor picks the uplink of vni, or the only one when vni < 0.
func (sw *Switch) uplinkFor(vni int64) (*vxlanUplink, error) {
	us := sw.uplinks()
	if vni < 0 {
		switch len(us) {
		case 1:
			return us[0], nil
		case 0:
			return nil, ErrVXLANNoUplink
		}
		return nil, fmt.Errorf("%d vxlan uplinks: name one with vni N", len(us))
	}
	var found *vxlanUplink
	for _, u := range us {
		if int64(u.vni) == vni {
			if found != nil {
				return nil, fmt.Errorf("several uplinks of vni %d", vni)
			}
			found = u
		}
	}
	if found == nil {
		return nil, fmt.Errorf("vni %d: %w", vni, ErrVXLANNoUplink)
	}
	return found, nil
}

// AddVXLANRemote adds a remote endpoint to the uplink of vni (or the only
// uplink when vni < 0) while the switch runs.
func (sw *Switch) AddVXLANRemote(vni int64, remote netip.AddrPort) error {
	u, err := sw.uplinkFor(vni)
	if err != nil {
		return err
	}
	return u.addRemote(remote)
}

// DelVXLANRemote removes a remote endpoint and what was learned from it.
func (sw *Switch) DelVXLANRemote(vni int64, remote netip.AddrPort) error {
	u, err := sw.uplinkFor(vni)
	if err != nil {
		return err
	}
	return u.delRemote(remote)
}

// vxlanCommand runs the management command "vxlan [json]", "vxlan add
// ADDR[:PORT] [vni N]" or "vxlan del ADDR[:PORT] [vni N]".
func (sw *Switch) vxlanCommand(f []string, asJSON bool) ([]string, error) {
	const usage = "usage: vxlan [json] | vxlan add|del ADDR[:PORT] [vni N]"
	if len(f) == 0 {
		return sw.vxlanReply(asJSON)
	}
	if asJSON || (len(f) != 2 && len(f) != 4) || (f[0] != "add" && f[0] != "del") {
		return nil, cmdErr(usage)
	}
	vni := int64(-1)
	if len(f) == 4 {
		n, err := strconv.ParseUint(f[3], 10, 32)
		if f[2] != "vni" || err != nil || n > MaxVNI {
			return nil, cmdErr(usage)
		}
		vni = int64(n)
	}
	ap, err := ParseVXLANEndpoint(f[1])
	if err != nil {
		return nil, cmdErr("%w", err)
	}
	if f[0] == "add" {
		err = sw.AddVXLANRemote(vni, ap)
	} else {
		err = sw.DelVXLANRemote(vni, ap)
	}
	if err != nil {
		return nil, cmdErr("%w", err)
	}
	return nil, nil
}

type vxlanRemoteJSON struct {
	Remote   string            `json:"remote"`
	RxFrames uint64            `json:"rx_frames"`
	RxBytes  uint64            `json:"rx_bytes"`
	TxFrames uint64            `json:"tx_frames"`
	TxBytes  uint64            `json:"tx_bytes"`
	MACs     int               `json:"macs"`
	Drops    map[string]uint64 `json:"drops"`
}

type vxlanJSON struct {
	VNI           uint32            `json:"vni"`
	Port          int               `json:"port"`
	Local         string            `json:"local"`
	StrangerDrops uint64            `json:"stranger_drops"`
	Remotes       []vxlanRemoteJSON `json:"remotes"`
}

func (sw *Switch) vxlanReply(asJSON bool) ([]string, error) {
	infos := sw.VXLAN()
	if asJSON {
		out := make([]vxlanJSON, 0, len(infos))
		for _, u := range infos {
			j := vxlanJSON{VNI: u.VNI, Port: u.Port, Local: u.Local.String(), StrangerDrops: u.StrangerDrops, Remotes: []vxlanRemoteJSON{}}
			for _, r := range u.Remotes {
				j.Remotes = append(j.Remotes, vxlanRemoteJSON{Remote: r.Remote.String(), RxFrames: r.RxFrames, RxBytes: r.RxBytes,
					TxFrames: r.TxFrames, TxBytes: r.TxBytes, MACs: r.MACs, Drops: r.Drops})
			}
			out = append(out, j)
		}
		return jsonLine(out)
	}
	// One line per uplink (REMOTE "-", its drops those of strangers),
	// then one per remote.
	lines := []string{"VNI PORT LOCAL REMOTE RX_FRAMES RX_BYTES TX_FRAMES TX_BYTES MACS DROPS"}
	for _, u := range infos {
		d := "-"
		if u.StrangerDrops > 0 {
			d = fmt.Sprintf("stranger=%d", u.StrangerDrops)
		}
		lines = append(lines, fmt.Sprintf("%d %d %s - - - - - - %s", u.VNI, u.Port, u.Local, d))
		for _, r := range u.Remotes {
			var drops []string
			for _, name := range vxlanDropNames {
				if n := r.Drops[name]; n > 0 {
					drops = append(drops, fmt.Sprintf("%s=%d", name, n))
				}
			}
			if len(drops) == 0 {
				drops = []string{"-"}
			}
			lines = append(lines, fmt.Sprintf("%d %d %s %s %d %d %d %d %d %s", u.VNI, u.Port, u.Local, r.Remote,
				r.RxFrames, r.RxBytes, r.TxFrames, r.TxBytes, r.MACs, strings.Join(drops, ",")))
		}
	}
	return lines, nil
}
