//go:build !linux

package term

// The terminal test uses Linux's TCGETS ioctl, and the tools it serves are
// Linux only. Elsewhere the build stops here, naming the reason.
const _ = package_term_requires_linux
