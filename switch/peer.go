//go:build linux

package vswitch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// umlAddrPID reads the pid a UML writes into its abstract data socket
// name: after the leading NUL, struct { char zero; int pid; int usecs; }
// (arch/um/drivers/daemon_user.c), pid in host byte order. It returns 0
// when addr (a raw sockaddr_un) is not such a name.
func umlAddrPID(addr []byte) int {
	if len(addr) < 2+1+4+4+4 || addr[2] != 0 {
		return 0
	}
	name := addr[3:]
	if name[0] != 0 {
		return 0
	}
	pid := int(int32(binary.LittleEndian.Uint32(name[4:8])))
	if pid <= 0 || !allZero(name[12:]) {
		return 0
	}
	return pid
}

// procIdentity reads what names a process: its umid (the umid= word a UML
// kernel got on its command line), else its command name.
func procIdentity(pid int) (umid, comm string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil {
		for _, a := range bytes.Split(b, []byte{0}) {
			if bytes.HasPrefix(a, []byte("umid=")) {
				umid = string(a[len("umid="):])
			}
		}
	}
	if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
		comm = strings.TrimSpace(string(c))
	}
	return umid, comm
}

// identify fills in who is on a daemon port: the pid from the control
// connection's credentials (or, failing that, from a UML's data socket
// name), and that process's umid or command name. Peer becomes readable:
// "umid=NAME,pid=N" for a UML, "pid=N,comm=NAME" for other clients, the
// data socket's name as before when nothing is known.
func identify(p *Port, c *net.UnixConn, sock []byte) {
	pid := peerCredConn(c)
	if pid == 0 {
		pid = umlAddrPID(sock)
	}
	nameByPID(p, pid, "", true)
}

// identifyConn does the same for a connection-per-port transport (bess,
// stream), keeping the kind prefix: "bess:umid=NAME,pid=N". A pid with
// neither umid nor command name leaves the socket address as the name.
func identifyConn(p *Port, c *net.UnixConn, kind Transport) {
	nameByPID(p, peerCredConn(c), string(kind)+":", false)
}

// nameByPID keeps Peer as PeerAddr and, when pid is known, names the port
// after that process: prefix, then its umid or command name and pid, or
// (bare) the pid alone.
func nameByPID(p *Port, pid int, prefix string, bare bool) {
	p.PeerAddr = p.Peer
	if pid == 0 {
		return
	}
	p.PeerPID = pid
	umid, comm := procIdentity(pid)
	p.UMID = umid
	switch {
	case umid != "":
		p.Peer = fmt.Sprintf("%sumid=%s,pid=%d", prefix, printable(umid), pid)
	case comm != "":
		p.Peer = fmt.Sprintf("%spid=%d,comm=%s", prefix, pid, printable(comm))
	case bare:
		p.Peer = fmt.Sprintf("%spid=%d", prefix, pid)
	}
}

func peerCredConn(c *net.UnixConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	pid := 0
	_ = rc.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	return pid
}

// printable escapes what would break a listing line (spaces, commas,
// control bytes) as \xNN.
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > 0x20 && c < 0x7f && c != ',' && c != '\\' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	return b.String()
}
