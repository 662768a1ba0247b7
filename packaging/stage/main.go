// Stage lays out one umlutils package's files, as packaging.Manifest
// describes them, for the Makefile's rpm and deb targets and for
// packaging/umlutils.spec.
//
// Synopsis: go run ./packaging/stage -packager deb|rpm -bin DIR -dest DIR
// [-libexec "NAMES"] [-rpm-files FILE] [-nfpm FILE]
//
//	-dest DIR        stage the installed tree under DIR (a buildroot)
//	-rpm-files FILE  write the RPM %files list
//	-nfpm FILE       write an nfpm config: packaging/nfpm.yaml with the
//	                 staged files appended to its contents list
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/umlutils/umlutils/packaging"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("stage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "project root")
	bin := fs.String("bin", "", "directory of the built commands")
	pkgr := fs.String("packager", "", "deb or rpm")
	libexec := fs.String("libexec", strings.Join(packaging.DefaultLibexec, " "), "commands installed in "+packaging.LibexecDir)
	dest := fs.String("dest", "", "directory to stage the package's tree in")
	rpmFiles := fs.String("rpm-files", "", "write the RPM %files list here")
	nfpm := fs.String("nfpm", "", "write the nfpm config here")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *bin == "" || *dest == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "stage: need -packager, -bin and -dest, and no other arguments")
		return 2
	}
	if err := stage(*root, *bin, packaging.Packager(*pkgr), strings.Fields(*libexec), *dest, *rpmFiles, *nfpm); err != nil {
		fmt.Fprintf(stderr, "stage: %v\n", err)
		return 1
	}
	return 0
}

func stage(root, bin string, p packaging.Packager, libexec []string, dest, rpmFiles, nfpm string) error {
	es, err := packaging.Manifest(root, p, libexec)
	if err != nil {
		return err
	}
	if err := packaging.Stage(es, root, bin, dest); err != nil {
		return err
	}
	if rpmFiles != "" {
		if err := os.WriteFile(rpmFiles, []byte(packaging.RPMFiles(es)), 0o644); err != nil {
			return err
		}
	}
	if nfpm != "" {
		tmpl, err := os.ReadFile(filepath.Join(root, "packaging", "nfpm.yaml"))
		if err != nil {
			return err
		}
		cfg, err := packaging.NFPMConfig(tmpl, es, p, dest)
		if err != nil {
			return err
		}
		if err := os.WriteFile(nfpm, cfg, 0o644); err != nil {
			return err
		}
	}
	return nil
}
