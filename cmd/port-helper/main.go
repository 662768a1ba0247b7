// Command port-helper hands a new terminal to a User-Mode Linux kernel, a
// drop-in for uml-utilities' /usr/lib/uml/port-helper.
//
// Synopsis:
//
//	port-helper [-uml-socket SOCKET]
//
// A UML console or serial line on port:N runs "in.telnetd -L port-helper"
// for each telnet connection (an xterm channel runs it under "xterm -e").
// port-helper ignores SIGHUP, gives up its controlling terminal, sends its
// standard input to the UML over a Unix socket with SCM_RIGHTS, the message
// body being its pid, and then waits until the UML kills it when the
// console closes. The socket is the one inherited as file descriptor 3, or,
// with -uml-socket, a datagram socket it connects to SOCKET.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
