// Command uml_moo merges a User-Mode Linux COW file with its backing file.
//
// Synopsis:
//
//	uml_moo [-b BACKING] [--force] COW NEW
//	uml_moo [-b BACKING] [--force] -d COW
//
// The first form writes the merged disk to a new image NEW (sparse, written
// under a temporary name and renamed into place when complete); -d merges
// in place into the backing file and flushes it to disk. -b names the
// backing file when the one in the COW header is wrong (moved, or recorded
// inside a chroot). A COW file a running guest holds open is refused, and
// so is -d while any guest uses the backing file; --force overrides.
// Drop-in for the C uml_moo: same usage text, messages and exit status 1
// on errors.
package main

import "os"

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
