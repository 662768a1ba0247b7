//go:build linux

// Package mmsg batches datagram I/O with recvmmsg(2) and sendmmsg(2) while
// keeping every peer address as raw bytes.
//
// golang.org/x/sys/unix v0.30.0 has neither the struct mmsghdr type nor
// wrappers for the two calls, so both are defined here. Addresses stay raw
// because UML binds its data socket to a 110-byte abstract sockaddr_un whose
// name holds binary pid/time bytes, NULs included (docs/protocols.md §1): Go's
// address decoding would cut such a name at its first NUL, and a reply must
// go to exactly the bytes and length the peer bound.
//
// Linux only.
package mmsg

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mmsghdr is struct mmsghdr from <sys/socket.h> (Linux, 64-bit).
type Mmsghdr struct {
	Hdr unix.Msghdr
	Len uint32
	_   [4]byte
}

// SizeofSockaddrUnix is sizeof(struct sockaddr_un): 2 bytes of family and
// 108 of path.
const SizeofSockaddrUnix = unix.SizeofSockaddrUnix

// RecvBatch is a reusable set of receive slots, each with its own frame
// buffer and sender-address buffer.
type RecvBatch struct {
	hdrs  []Mmsghdr
	iovs  []unix.Iovec
	bufs  [][]byte
	names []unix.RawSockaddrUnix
	n     int
}

// NewRecvBatch allocates n slots of bufSize bytes each.
func NewRecvBatch(n, bufSize int) *RecvBatch {
	b := &RecvBatch{
		hdrs:  make([]Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		bufs:  make([][]byte, n),
		names: make([]unix.RawSockaddrUnix, n),
	}
	for i := range b.hdrs {
		b.bufs[i] = make([]byte, bufSize)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(bufSize)
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.Iovlen = 1
		b.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	return b
}

// Cap is the number of slots.
func (b *RecvBatch) Cap() int { return len(b.hdrs) }

// Recv fills up to max slots (all when max <= 0) from fd with one
// recvmmsg call and returns how many it filled. flags is usually
// MSG_DONTWAIT; EAGAIN is returned as an error.
func (b *RecvBatch) Recv(fd int, max int, flags int) (int, error) {
	return b.recv(fd, max, flags, false)
}

// RecvRaw is Recv without telling the Go scheduler about the system call
// (RawSyscall): the calling thread keeps its P while it sleeps in the
// kernel, so waking up costs no P hand-back. Only for a thread dedicated
// to one socket that has a receive timeout (SO_RCVTIMEO) and retries on
// EINTR: the runtime's preemption signal interrupts the call, which is how
// the goroutine still reaches a safe point quickly.
func (b *RecvBatch) RecvRaw(fd int, max int, flags int) (int, error) {
	return b.recv(fd, max, flags, true)
}

func (b *RecvBatch) recv(fd int, max int, flags int, raw bool) (int, error) {
	if max <= 0 || max > len(b.hdrs) {
		max = len(b.hdrs)
	}
	for i := 0; i < max; i++ {
		b.hdrs[i].Hdr.Namelen = SizeofSockaddrUnix
		b.hdrs[i].Hdr.Flags = 0
		b.hdrs[i].Len = 0
	}
	var r uintptr
	var e unix.Errno
	if raw {
		r, _, e = unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(max), uintptr(flags), 0, 0)
	} else {
		r, _, e = unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(max), uintptr(flags), 0, 0)
	}
	if e != 0 {
		b.n = 0
		return 0, e
	}
	b.n = int(r)
	return b.n, nil
}

// Len is the number of slots the last Recv filled.
func (b *RecvBatch) Len() int { return b.n }

// Frame is the datagram in slot i.
func (b *RecvBatch) Frame(i int) []byte { return b.bufs[i][:b.hdrs[i].Len] }

// Name is the raw sender address of slot i: family and path, exactly the
// length the kernel reported.
func (b *RecvBatch) Name(i int) []byte {
	n := int(b.hdrs[i].Hdr.Namelen)
	if n > SizeofSockaddrUnix {
		n = SizeofSockaddrUnix
	}
	return (*[SizeofSockaddrUnix]byte)(unsafe.Pointer(&b.names[i]))[:n]
}

// Truncated reports whether slot i's datagram was longer than its buffer.
func (b *RecvBatch) Truncated(i int) bool { return b.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 }

// SendBatch collects datagrams for one sendmmsg call. Frames and names are
// referenced, not copied: they must stay unchanged until Flush returns.
type SendBatch struct {
	hdrs []Mmsghdr
	iovs []unix.Iovec
	off  int // datagrams before off are sent (Send)
	n    int
}

// NewSendBatch allocates room for n datagrams.
func NewSendBatch(n int) *SendBatch {
	b := &SendBatch{hdrs: make([]Mmsghdr, n), iovs: make([]unix.Iovec, n)}
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.Iovlen = 1
	}
	return b
}

// Len is the number of queued datagrams not yet sent.
func (b *SendBatch) Len() int { return b.n - b.off }

// Full reports whether another Add would not fit.
func (b *SendBatch) Full() bool { return b.n == len(b.hdrs) }

// Add queues frame for the raw address name (family and path, as long as
// the peer bound it; empty for a connected socket's peer). It returns the
// datagram's index in the batch.
func (b *SendBatch) Add(name, frame []byte) int {
	i := b.n
	h := &b.hdrs[i].Hdr
	if len(name) > 0 {
		h.Name = &name[0]
	} else {
		h.Name = nil // a connected socket's peer
	}
	h.Namelen = uint32(len(name))
	if len(frame) > 0 {
		b.iovs[i].Base = &frame[0]
	} else {
		b.iovs[i].Base = nil
	}
	b.iovs[i].SetLen(len(frame))
	b.n++
	return i
}

// Flush sends everything queued on fd with as few sendmmsg calls as the
// kernel allows and empties the batch. A datagram the kernel refuses (a full
// peer queue gives EAGAIN, a vanished peer ECONNREFUSED or ENOENT) is
// reported to failed with its index and skipped; the rest still go out.
func (b *SendBatch) Flush(fd int, flags int, failed func(i int, err unix.Errno)) {
	for start := b.off; start < b.n; {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[start])), uintptr(b.n-start), uintptr(flags), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			// sendmmsg reports an error only when the first datagram fails.
			if failed != nil {
				failed(start, e)
			}
			start++
			continue
		}
		if r == 0 { // no progress and no error: never loop forever
			r = 1
		}
		start += int(r)
	}
	b.reset()
}

// Discard empties the batch without sending.
func (b *SendBatch) Discard() { b.reset() }

func (b *SendBatch) reset() {
	for i := 0; i < b.n; i++ {
		b.hdrs[i].Hdr.Name = nil
		b.iovs[i].Base = nil
	}
	b.n, b.off = 0, 0
}

// Send makes one sendmmsg call for what is still queued and returns how
// many datagrams went out; the batch is emptied once all have. An error
// (EAGAIN included) concerns the first unsent datagram, which stays queued.
func (b *SendBatch) Send(fd int, flags int) (int, error) {
	if b.off >= b.n {
		b.reset()
		return 0, nil
	}
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[b.off])), uintptr(b.n-b.off), uintptr(flags), 0, 0)
	if e != 0 {
		return 0, e
	}
	b.off += int(r)
	if b.off >= b.n {
		b.reset()
	}
	return int(r), nil
}

// SendTo sends one datagram to the raw address to.
func SendTo(fd int, frame []byte, flags int, to []byte) error {
	var p unsafe.Pointer
	if len(frame) > 0 {
		p = unsafe.Pointer(&frame[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(frame)), uintptr(flags), uintptr(unsafe.Pointer(&to[0])), uintptr(len(to)))
	if e != 0 {
		return e
	}
	return nil
}

// Cap is the number of datagrams the batch holds.
func (b *SendBatch) Cap() int { return len(b.hdrs) }

// Bind binds fd to the raw sockaddr_un addr (family and path, exactly as
// long as given). x/sys/unix cannot express a 108-byte abstract name, which
// is what UML's peers expect (a full struct sockaddr_un).
func Bind(fd int, addr []byte) error { return sockaddrCall(unix.SYS_BIND, fd, addr) }

// Connect connects fd to the raw sockaddr_un addr.
func Connect(fd int, addr []byte) error { return sockaddrCall(unix.SYS_CONNECT, fd, addr) }

// sockaddrCall makes bind(2) or connect(2) with a raw address.
func sockaddrCall(trap uintptr, fd int, addr []byte) error {
	if len(addr) < 2 || len(addr) > SizeofSockaddrUnix {
		return unix.EINVAL
	}
	var raw unix.RawSockaddrUnix
	copy((*[SizeofSockaddrUnix]byte)(unsafe.Pointer(&raw))[:], addr)
	_, _, e := unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&raw)), uintptr(len(addr)))
	if e != 0 {
		return e
	}
	return nil
}
