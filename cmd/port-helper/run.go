package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inheritedSocket is the descriptor the UML leaves its end of the
// connection on before exec'ing telnetd or xterm (port_pre_exec and
// xterm.c in arch/um/drivers dup2 it to 3). A variable so tests can hand in
// their own.
var inheritedSocket = 3

// waitForever blocks until a signal kills the process: the UML kills the
// helper when the console closes. A variable so tests can return instead.
var waitForever = func() {
	for {
		_ = unix.Pause()
	}
}

// run is port-helper; args exclude the program name. stdin must be the
// terminal to hand over (an *os.File).
func run(args []string, stdin io.Reader, _, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "port-helper: "+format+"\n", a...)
		return 1
	}
	term, ok := stdin.(*os.File)
	if !ok {
		return fail("standard input is not a file descriptor")
	}
	sock := inheritedSocket
	// Like the C helper, only a first argument of -uml-socket counts and
	// anything else is ignored (telnetd and xterm pass nothing).
	if len(args) > 0 && args[0] == "-uml-socket" {
		if len(args) < 2 || args[1] == "" {
			return fail("-uml-socket needs the path of the UML's socket")
		}
		var err error
		if sock, err = dialUML(args[1]); err != nil {
			return fail("%v", err)
		}
	} else if err := checkInherited(sock); err != nil {
		// Checked before TIOCNOTTY so that a helper run by hand changes
		// nothing (the C helper pauses forever here instead).
		return fail("%v", err)
	}
	// Giving up a controlling terminal we lead the session of sends SIGHUP
	// to its foreground process group, which includes us.
	signal.Ignore(syscall.SIGHUP)
	if err := unix.IoctlSetInt(int(term.Fd()), unix.TIOCNOTTY, 0); err != nil {
		// Not fatal, as in the C helper: the UML can use the terminal anyway.
		fmt.Fprintf(stderr, "TIOCNOTTY failed in port-helper, check UML's exec call for xterm or telnetd: %s\n", strerror(err))
	}
	if err := sendTerminal(sock, int(term.Fd()), os.Getpid()); err != nil {
		return fail("handing the terminal to the UML: %v", err)
	}
	waitForever()
	return 0
}

// checkInherited says why fd is not the socket a UML leaves to its helper.
func checkInherited(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		if errors.Is(err, unix.EBADF) {
			return fmt.Errorf("file descriptor %d is not open: the UML kernel that runs port-helper leaves its socket there (or give -uml-socket SOCKET)", fd)
		}
		return fmt.Errorf("file descriptor %d: %w", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("file descriptor %d is not a socket: the UML kernel that runs port-helper leaves its socket there (or give -uml-socket SOCKET)", fd)
	}
	return nil
}

// dialUML connects a datagram socket to the UML's socket at path. It is
// bound first to an abstract name made of our pid, exactly as the C helper
// does ("\0" then "%5d", the rest of sun_path zero), so the UML sees the
// same peer address.
func dialUML(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	// unix.SockaddrUnix cannot express a name filling all of sun_path.
	sa := unix.RawSockaddrUnix{Family: unix.AF_UNIX}
	for i, c := range []byte(fmt.Sprintf("%5d", os.Getpid())) {
		sa.Path[1+i] = int8(c)
	}
	if _, _, e := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa)); e != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("bind: %w", e)
	}
	// A leading '@' means a file name here, as in C, not an abstract name.
	if strings.HasPrefix(path, "@") {
		path = "./" + path
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		if fi, serr := os.Stat(path); serr == nil && fi.Mode()&os.ModeSocket == 0 {
			// Not "connection refused", which reads as a dead UML.
			return -1, fmt.Errorf("connect %s: not a socket", path)
		}
		if errors.Is(err, unix.EINVAL) && len(path) >= len(unix.RawSockaddrUnix{}.Path) {
			return -1, fmt.Errorf("connect %s: socket path longer than %d bytes", path, len(unix.RawSockaddrUnix{}.Path)-1)
		}
		return -1, fmt.Errorf("connect %s: %w", path, err)
	}
	return fd, nil
}

// sendTerminal sends fd over sock with SCM_RIGHTS, the body being pid as a
// native C int, which the UML's os_rcv_fd reads as the helper's pid (to
// kill it later).
func sendTerminal(sock, fd, pid int) error {
	body := make([]byte, 4)
	binary.NativeEndian.PutUint32(body, uint32(pid))
	for {
		err := unix.Sendmsg(sock, body, unix.UnixRights(fd), nil, 0)
		if err != unix.EINTR {
			return err
		}
	}
}

func strerror(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		s := en.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}
