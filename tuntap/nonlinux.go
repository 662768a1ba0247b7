//go:build !linux

package tuntap

// Tun/tap devices are Linux's /dev/net/tun and rtnetlink. Elsewhere the
// build stops here, naming the reason, rather than at an undefined symbol.
const _ = package_tuntap_requires_linux
