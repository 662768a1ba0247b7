// Command uml_mkcow creates an empty User-Mode Linux COW file.
//
// Synopsis:
//
//	uml_mkcow [-f] COW BACKING
//
// The COW file gets a v3 header naming BACKING by its absolute path, with
// BACKING's size and mtime, byte for byte what the C uml_mkcow and the
// kernel write; its data area is a hole. An existing COW is kept unless -f.
// Exit status 2 on a usage error, 1 on any other error, as the C tool.
package main

import "os"

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
