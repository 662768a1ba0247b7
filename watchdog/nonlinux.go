//go:build !linux

package watchdog

// The watchdog helper kills guests by walking /proc (Linux's process
// table), and UML itself runs only on Linux. Elsewhere the build stops here,
// naming the reason, rather than at an undefined symbol.
const _ = package_watchdog_requires_linux
