//go:build !linux

package mmsg

// recvmmsg(2) and sendmmsg(2) are Linux system calls. Elsewhere the build
// stops here, naming the reason, rather than at an undefined symbol.
const _ = package_mmsg_requires_linux
