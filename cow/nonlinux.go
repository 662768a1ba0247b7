//go:build !linux

package cow

// COW files are merged with Linux calls (F_OFD_GETLK lock queries,
// O_TMPFILE, FICLONERANGE, SEEK_DATA/SEEK_HOLE, fallocate) for the kernels
// that write them, which run only on Linux. Elsewhere the build stops here,
// naming the reason, rather than at an undefined symbol.
const _ = package_cow_requires_linux
