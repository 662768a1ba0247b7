// Package packaging lays out umlutils' distribution packages: which file of
// the source tree (or of the built binaries) lands where, with which mode, in
// the .deb and the .rpm alike.
//
// It is the single source of truth for package contents. `make rpm` and
// `make deb` stage the tree it describes and hand nfpm a config generated
// from the same entries; packaging/umlutils.spec stages the same tree into
// its buildroot and takes its %files list from the same entries. Commands are
// whatever directories cmd/* hold and man pages whatever man/NAME.SECTION
// files exist when the package is built, so new commands need no change here.
//
// Paths follow Debian's uml-utilities, which scripts and the kernel rely on
// (docs/users.md §1): binaries in /usr/bin, port-helper in
// /usr/lib/uml (Debian's kernels exec it from there), and on RPM systems
// also /usr/lib64/uml, where those distributions' kernels look.
package packaging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Packager names a package format.
type Packager string

// The package formats umlutils ships.
const (
	Deb Packager = "deb"
	RPM Packager = "rpm"
)

// Kind is what an Entry puts on the target system.
type Kind int

// Entry kinds.
const (
	File Kind = iota
	Dir
	Symlink
)

// Entry is one path in a package.
type Entry struct {
	Dst  string // absolute path on the installed system
	Kind Kind
	// Src is where a File comes from: relative to the project root, or to
	// the directory of built binaries when Binary is set. For a Symlink it
	// is the link's target.
	Src    string
	Binary bool
	Mode   os.FileMode
	// Gzip stores the file compressed (man pages, as both Debian and RPM
	// distributions install them); Dst then ends in .gz.
	Gzip bool
	// Doc and License mark documentation for RPM (%doc, %license).
	Doc, License bool
}

// Installed locations, shared by both formats.
const (
	BinDir     = "/usr/bin"
	LibexecDir = "/usr/lib/uml"   // where Debian's UML kernels exec port-helper
	Lib64Dir   = "/usr/lib64/uml" // where RPM distributions' kernels look
	HelperDir  = "/usr/lib/umlutils"
	ManDir     = "/usr/share/man"
	DocDir     = "/usr/share/doc/umlutils"
	UnitDir    = "/usr/lib/systemd/system"
	SysusersD  = "/usr/lib/sysusers.d"
	TmpfilesD  = "/usr/lib/tmpfiles.d"
)

// readDir lists root/sub; a tree without sub has nothing there.
func readDir(root, sub string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(filepath.Join(root, sub))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return ents, err
}

// manPage matches man/NAME.SECTION.
var manPage = regexp.MustCompile(`^([A-Za-z0-9_.+-]+)\.([1-8])$`)

// Commands lists the commands of the tree at root: the directories under cmd/.
func Commands(root string) ([]string, error) {
	ents, err := readDir(root, "cmd")
	if err != nil {
		return nil, err
	}
	var cmds []string
	for _, e := range ents {
		if e.IsDir() {
			cmds = append(cmds, e.Name())
		}
	}
	return cmds, nil
}

// ManPage is a roff page under man/.
type ManPage struct {
	Name    string // the page's name, e.g. uml_switch
	Section string // "1" or "8"
	Path    string // relative to the project root, e.g. man/uml_switch.1
}

// ManPages lists man/NAME.SECTION files of the tree at root.
func ManPages(root string) ([]ManPage, error) {
	ents, err := readDir(root, "man")
	if err != nil {
		return nil, err
	}
	var pages []ManPage
	for _, e := range ents {
		m := manPage.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			continue
		}
		pages = append(pages, ManPage{Name: m[1], Section: m[2], Path: "man/" + e.Name()})
	}
	return pages, nil
}

// Manifest returns the contents of the package for packager, built from the
// tree at root. libexec names the commands installed in LibexecDir instead of
// BinDir (the Makefile's LIBEXEC_CMDS). It fails when there is nothing to
// package or a file the package needs is missing.
func Manifest(root string, packager Packager, libexec []string) ([]Entry, error) {
	if packager != Deb && packager != RPM {
		return nil, fmt.Errorf("unknown packager %q (want deb or rpm)", packager)
	}
	cmds, err := Commands(root)
	if err != nil {
		return nil, err
	}
	if len(cmds) == 0 {
		return nil, fmt.Errorf("%s: no commands under cmd/: nothing to package", root)
	}
	pages, err := ManPages(root)
	if err != nil {
		return nil, err
	}
	isLibexec := map[string]bool{}
	for _, c := range libexec {
		isLibexec[c] = true
	}

	es := []Entry{{Dst: HelperDir, Kind: Dir, Mode: 0o755}}
	anyLibexec := false
	for _, c := range cmds {
		dst := BinDir + "/" + c
		if isLibexec[c] {
			anyLibexec = true
			dst = LibexecDir + "/" + c
			if packager == RPM {
				es = append(es, Entry{Dst: Lib64Dir + "/" + c, Kind: Symlink, Src: "../../lib/uml/" + c})
			}
		}
		es = append(es, Entry{Dst: dst, Src: c, Binary: true, Mode: 0o755})
	}
	if anyLibexec {
		es = append(es, Entry{Dst: LibexecDir, Kind: Dir, Mode: 0o755})
		if packager == RPM {
			es = append(es, Entry{Dst: Lib64Dir, Kind: Dir, Mode: 0o755})
		}
	}
	for _, p := range pages {
		es = append(es, Entry{
			Dst:  fmt.Sprintf("%s/man%s/%s.%s.gz", ManDir, p.Section, p.Name, p.Section),
			Src:  p.Path,
			Mode: 0o644,
			Gzip: true,
		})
	}
	es = append(es,
		Entry{Dst: UnitDir + "/uml-switch.service", Src: "packaging/uml-switch.service", Mode: 0o644},
		// The name of Debian's SysV script as an alias of ours: systemd's
		// sysv generator skips a script when a unit of its name exists, so a
		// leftover /etc/init.d/uml-utilities (a conffile that outlives the
		// removed C package) cannot start a second switch on the same
		// socket, and `service uml-utilities restart` reaches our unit.
		Entry{Dst: UnitDir + "/uml-utilities.service", Kind: Symlink, Src: "uml-switch.service"},
		Entry{Dst: HelperDir + "/uml-switch-service", Src: "packaging/uml-switch-service", Mode: 0o755},
		Entry{Dst: SysusersD + "/umlutils.conf", Src: "packaging/sysusers.conf", Mode: 0o644},
		Entry{Dst: TmpfilesD + "/umlutils.conf", Src: "packaging/tmpfiles.conf", Mode: 0o644},
		Entry{Dst: DocDir, Kind: Dir, Mode: 0o755},
		Entry{Dst: DocDir + "/LICENSE", Src: "LICENSE", Mode: 0o644, License: true},
	)
	// The README is the lead's; package it whenever the tree has one.
	if _, err := os.Stat(filepath.Join(root, "README.md")); err == nil {
		es = append(es, Entry{Dst: DocDir + "/README.md", Src: "README.md", Mode: 0o644, Doc: true})
	}
	for _, e := range es {
		if e.Kind == File && !e.Binary {
			if _, err := os.Stat(filepath.Join(root, e.Src)); err != nil {
				return nil, fmt.Errorf("package content for %s: %w", e.Dst, err)
			}
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Dst < es[j].Dst })
	return es, nil
}

// ManSection is the section a command's man page belongs in: 8 for the
// tools an administrator or the kernel runs, 1 for the rest (as in Debian's
// uml-utilities, which has tunctl in 8 and the uml_* tools in 1).
func ManSection(cmd string) string {
	switch cmd {
	case "tunctl", "uml_watchdog", "port-helper":
		return "8"
	}
	return "1"
}

// RPMFiles renders entries as an RPM %files list (read with `%files -f`).
// Man pages end in a glob: rpmbuild's brp-compress may recompress them.
func RPMFiles(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		switch e.Kind {
		case Dir:
			fmt.Fprintf(&b, "%%dir %%attr(%04o,root,root) %s\n", e.Mode, e.Dst)
		case Symlink:
			fmt.Fprintf(&b, "%s\n", e.Dst)
		default:
			mark := ""
			if e.Doc {
				mark = "%doc "
			} else if e.License {
				mark = "%license "
			}
			dst := e.Dst
			if e.Gzip {
				dst = strings.TrimSuffix(dst, ".gz") + "*"
			}
			fmt.Fprintf(&b, "%s%%attr(%04o,root,root) %s\n", mark, e.Mode, dst)
		}
	}
	return b.String()
}

// NFPMContents renders entries as the items of an nfpm `contents:` list,
// taking files from a tree staged by Stage at stage (a path relative to where
// nfpm runs, or absolute).
func NFPMContents(es []Entry, packager Packager, stage string) string {
	var b strings.Builder
	for _, e := range es {
		switch e.Kind {
		case Dir:
			fmt.Fprintf(&b, "  - dst: %q\n    type: dir\n    file_info: {mode: 0%o, owner: root, group: root}\n", e.Dst, e.Mode)
		case Symlink:
			fmt.Fprintf(&b, "  - src: %q\n    dst: %q\n    type: symlink\n", e.Src, e.Dst)
		default:
			fmt.Fprintf(&b, "  - src: %q\n    dst: %q\n", filepath.ToSlash(filepath.Join(stage, e.Dst)), e.Dst)
			// nfpm drops RPM-only types from a .deb, so mark docs for RPM only.
			if packager == RPM && e.Doc {
				b.WriteString("    type: doc\n")
			} else if packager == RPM && e.License {
				b.WriteString("    type: license\n")
			}
			fmt.Fprintf(&b, "    file_info: {mode: 0%o, owner: root, group: root}\n", e.Mode)
		}
	}
	return b.String()
}

// NFPMConfig completes the nfpm config template tmpl (packaging/nfpm.yaml),
// whose last key must be an open `contents:` list, with the entries staged at
// stage.
func NFPMConfig(tmpl []byte, es []Entry, packager Packager, stage string) ([]byte, error) {
	lines := strings.Split(strings.TrimRight(string(tmpl), "\n"), "\n")
	last := ""
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "#") {
			last = lines[i]
			break
		}
	}
	if last != "contents:" {
		return nil, errors.New("nfpm template: its last key must be a top-level `contents:` for the generated entries")
	}
	out := strings.TrimRight(string(tmpl), "\n") + "\n" + NFPMContents(es, packager, stage)
	return []byte(out), nil
}
