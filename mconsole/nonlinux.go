//go:build !linux

package mconsole

// The client waits with eventfd(2) and poll(2), and the guests it talks to
// (UML kernels) run only on Linux. Elsewhere the build stops here, naming
// the reason, rather than at an undefined symbol.
const _ = package_mconsole_requires_linux
