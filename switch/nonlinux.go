//go:build !linux

package vswitch

// The switch's transports are Linux calls (SO_PEERCRED, epoll, recvmmsg
// and sendmmsg on abstract Unix sockets, SOCK_SEQPACKET, tap devices,
// /proc for peer identity) and its peers, UML kernels, run only on
// Linux. Elsewhere the build stops here, naming the reason, rather than
// at an undefined symbol.
const _ = package_vswitch_requires_linux
