//go:build e2e

package packaging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// pkgFile is one path of a built package as its package manager lists it.
type pkgFile struct {
	Perms string // ls-style, e.g. -rwxr-xr-x
	Owner string // user:group
	Link  string // a symlink's target
}

// need fails the test naming every tool it lacks.
func need(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	for _, c := range tools {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("missing tools %v (Debian packages rpm, cpio, man-db, dpkg, systemd; `make provision` installs them)", missing)
	}
}

func mustRun(t *testing.T, timeout time.Duration, dir string, env []string, argv ...string) string {
	t.Helper()
	out, err := runBounded(timeout, dir, env, argv...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, tail(out, 3000))
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// only returns the one file matching pattern, or fails.
func only(t *testing.T, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) != 1 {
		t.Fatalf("want one file matching %s, found %v", pattern, m)
	}
	return m[0]
}

// extractRPM unpacks an RPM's payload under dir. nfpm's payloads name
// files by absolute path (rpmbuild's start with ./), so cpio must be told to
// keep them under dir: without --no-absolute-filenames it writes into /.
func extractRPM(t *testing.T, rpm, dir string) {
	t.Helper()
	mustRun(t, time.Minute, dir, nil, "sh", "-c", `rpm2cpio "$1" | cpio -idm --quiet --no-absolute-filenames`, "sh", rpm)
}

// rpmFiles lists an RPM's files with modes, owners and link targets, as rpm
// itself reads them from the package header.
func rpmFiles(t *testing.T, rpm string) map[string]pkgFile {
	t.Helper()
	out := mustRun(t, time.Minute, "", nil, "rpm", "-qp", "--qf",
		`[%{FILEMODES:perms}\t%{FILEUSERNAME}:%{FILEGROUPNAME}\t%{FILENAMES}\t%{FILELINKTOS}\n]`, rpm)
	fs := map[string]pkgFile{}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			t.Fatalf("rpm file line %q", l)
		}
		// rpmbuild records the build-id links of ELF files; nfpm does not.
		if strings.HasPrefix(f[2], "/usr/lib/.build-id") {
			continue
		}
		pf := pkgFile{Perms: f[0], Owner: f[1], Link: f[3]}
		if strings.HasPrefix(pf.Perms, "l") {
			pf.Perms = "l" // a symlink's own permissions mean nothing
		}
		fs[f[2]] = pf
	}
	return fs
}

// debFiles lists a .deb's data archive (dpkg-deb -c) the same way.
func debFiles(t *testing.T, deb string) map[string]pkgFile {
	t.Helper()
	out := mustRun(t, time.Minute, "", nil, "dpkg-deb", "-c", deb)
	fs := map[string]pkgFile{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", l)
		}
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		pf := pkgFile{Perms: f[0], Owner: strings.Replace(f[1], "/", ":", 1)}
		if len(f) == 8 && f[6] == "->" {
			pf.Perms, pf.Link = "l", f[7]
		}
		fs[path] = pf
	}
	return fs
}

// expectedFiles is what a package built from the tree at root must hold:
// every command and man page at its path with its mode, and the system
// switch's files.
func expectedFiles(t *testing.T, root string, p Packager) map[string]pkgFile {
	t.Helper()
	cmds, err := Commands(root)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := ManPages(root)
	if err != nil {
		t.Fatal(err)
	}
	exe, doc := pkgFile{Perms: "-rwxr-xr-x", Owner: "root:root"}, pkgFile{Perms: "-rw-r--r--", Owner: "root:root"}
	want := map[string]pkgFile{
		UnitDir + "/uml-switch.service":    doc,
		UnitDir + "/uml-utilities.service": {Perms: "l", Owner: "root:root", Link: "uml-switch.service"},
		HelperDir + "/uml-switch-service":  exe,
		SysusersD + "/umlutils.conf":       doc,
		TmpfilesD + "/umlutils.conf":       doc,
		DocDir + "/LICENSE":                doc,
	}
	umlab, umlabPage := false, false
	for _, c := range cmds {
		switch c {
		case "port-helper":
			want[LibexecDir+"/"+c] = exe
			if p == RPM {
				want[Lib64Dir+"/"+c] = pkgFile{Perms: "l", Owner: "root:root", Link: "../../lib/uml/" + c}
			}
		case "umlab-guest":
			want[LibexecDir+"/"+c] = exe
		default:
			want[BinDir+"/"+c] = exe
			umlab = umlab || c == "umlab"
		}
	}
	for _, pg := range pages {
		want[fmt.Sprintf("%s/man%s/%s.%s.gz", ManDir, pg.Section, pg.Name, pg.Section)] = doc
		umlabPage = umlabPage || pg.Path == "man/umlab.1"
	}
	if umlab {
		for _, a := range []string{"lstart", "lhalt", "lcrash", "lclean", "linfo"} {
			want[BinDir+"/"+a] = pkgFile{Perms: "l", Owner: "root:root", Link: "umlab"}
			if umlabPage {
				want[ManDir+"/man1/"+a+".1.gz"] = pkgFile{Perms: "l", Owner: "root:root", Link: "umlab.1.gz"}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(root, "README.md")); err == nil {
		want[DocDir+"/README.md"] = doc
	}
	return want
}

// checkFiles compares a package's non-directory entries with want, and
// checks that nothing in it is setuid, setgid or world-writable.
func checkFiles(t *testing.T, what string, got, want map[string]pkgFile) {
	t.Helper()
	files := map[string]pkgFile{}
	for p, f := range got {
		if strings.HasPrefix(f.Perms, "d") {
			if f.Perms != "drwxr-xr-x" {
				t.Errorf("%s: directory %s has mode %s", what, p, f.Perms)
			}
			continue
		}
		files[p] = f
		if f.Perms != "l" && (strings.ContainsAny(f.Perms, "sS") || f.Perms[8] == 'w') {
			t.Errorf("%s: %s has mode %s: no setuid/setgid or world-writable files", what, p, f.Perms)
		}
	}
	if !reflect.DeepEqual(files, want) {
		for p, w := range want {
			if g, ok := files[p]; !ok || g != w {
				t.Errorf("%s: %s is %+v, want %+v", what, p, g, w)
			}
		}
		for p, g := range files {
			if _, ok := want[p]; !ok {
				t.Errorf("%s: unexpected %s %+v", what, p, g)
			}
		}
	}
}

// checkBinariesRun runs every command of an extracted package with an
// invalid option: each must start, print its usage and exit by itself.
func checkBinariesRun(t *testing.T, what, dir string, want map[string]pkgFile) {
	t.Helper()
	n := 0
	for p, f := range want {
		if f.Perms != "-rwxr-xr-x" || strings.HasPrefix(p, HelperDir) {
			continue
		}
		n++
		if out, err := usageOf(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v\n%s", what, err, out)
		}
	}
	if n == 0 {
		t.Errorf("%s: no commands to run", what)
	}
	for p, f := range want {
		if f.Link == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %s does not lead anywhere: %v", what, p, err)
		}
		// umlab's Netkit names: each runs umlab as the command it stands for.
		if a, ok := strings.CutPrefix(p, BinDir+"/"); ok && f.Link == "umlab" {
			out, err := usageOf(filepath.Join(dir, p))
			if want := "umlab " + strings.TrimPrefix(a, "l") + ": unknown option"; err != nil || !strings.Contains(out, want) {
				t.Errorf("%s: %s %s: %v, printed %q, want %q", what, p, badOption, err, out, want)
			}
		}
	}
	// The guest side runs as a guest's first process, before any libc.
	if _, ok := want[LibexecDir+"/umlab-guest"]; ok {
		if err := checkStatic(filepath.Join(dir, LibexecDir, "umlab-guest")); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
}

// TestE2EPackages builds the .rpm and the .deb with nfpm and the RPM again
// with rpmbuild from `make dist`, offline, in a copy of the tree (with
// stand-ins for commands not written yet), and inspects them with the
// package managers' own tools. Nothing is installed into the system.
func TestE2EPackages(t *testing.T) {
	need(t, "make", "go", "rpm", "rpm2cpio", "rpmbuild", "cpio", "dpkg", "dpkg-deb", "man", "systemd-analyze")
	root := t.TempDir()
	copyTree(t, projectRoot(t), root)
	if added := addDummyCommands(t, root); len(added) > 0 {
		t.Logf("stand-ins for commands not in the tree yet: %v", added)
	}
	version := strings.TrimSpace(mustRun(t, time.Minute, root, nil, "sh", "packaging/version.sh"))

	mustRun(t, 10*time.Minute, root, nil, "make", "rpm")
	mustRun(t, 10*time.Minute, root, nil, "make", "deb")
	rpmPath := only(t, filepath.Join(root, "dist", "umlutils-"+version+"-1.*.rpm"))
	debPath := only(t, filepath.Join(root, "dist", "umlutils_"+version+"-1_*.deb"))

	t.Run("rpm", func(t *testing.T) {
		want := expectedFiles(t, root, RPM)
		checkFiles(t, "rpm", rpmFiles(t, rpmPath), want)
		list := mustRun(t, time.Minute, "", nil, "rpm", "-qpl", rpmPath)
		for p := range want {
			if !strings.Contains("\n"+list, "\n"+p+"\n") {
				t.Errorf("rpm -qpl does not list %s", p)
			}
		}
		info := mustRun(t, time.Minute, "", nil, "rpm", "-qpi", rpmPath)
		for _, f := range []string{"Name        : umlutils\n", "Version     : " + version + "\n", "License     : GPL-2.0-or-later\n"} {
			if !strings.Contains(info, f) {
				t.Errorf("rpm -qpi lacks %q:\n%s", f, info)
			}
		}
		rel := func(q string) []string {
			out := strings.TrimSpace(mustRun(t, time.Minute, "", nil, "rpm", "-qp", "--"+q, rpmPath))
			s := strings.Split(out, "\n")
			sort.Strings(s)
			return s
		}
		if got := rel("obsoletes"); !reflect.DeepEqual(got, []string{"uml-utilities"}) {
			t.Errorf("obsoletes %q, want uml-utilities", got)
		}
		if got := rel("conflicts"); !reflect.DeepEqual(got, []string{"tunctl", "uml-utilities"}) {
			t.Errorf("conflicts %q, want tunctl and uml-utilities", got)
		}
		for _, p := range rel("provides") {
			if !strings.HasPrefix(p, "umlutils") {
				t.Errorf("provides %q: only umlutils itself", p)
			}
		}
		if got := rel("requires"); !reflect.DeepEqual(got, []string{"/usr/bin/setpriv"}) {
			t.Errorf("requires %q, want /usr/bin/setpriv", got)
		}
		if got := rel("recommends"); !reflect.DeepEqual(got, []string{"e2fsprogs", "mmdebstrap"}) {
			t.Errorf("recommends %q, want e2fsprogs and mmdebstrap", got)
		}
		if got := rel("suggests"); !reflect.DeepEqual(got, []string{""}) {
			t.Errorf("suggests %q, want none (user-mode-linux is Debian's name)", got)
		}
		dir := t.TempDir()
		extractRPM(t, rpmPath, dir)
		checkBinariesRun(t, "rpm", dir, want)
	})

	t.Run("deb", func(t *testing.T) {
		want := expectedFiles(t, root, Deb)
		checkFiles(t, "deb", debFiles(t, debPath), want)
		info := mustRun(t, time.Minute, "", nil, "dpkg-deb", "-I", debPath)
		for _, f := range []string{"Package: umlutils\n", "Version: " + version + "-1\n", "Conflicts: uml-utilities\n", "Replaces: uml-utilities\n",
			"Recommends: mmdebstrap, e2fsprogs\n", "Suggests: user-mode-linux\n"} {
			if !strings.Contains(info, f) {
				t.Errorf("dpkg-deb -I lacks %q:\n%s", f, info)
			}
		}
		if strings.Contains(info, "Provides:") {
			t.Errorf("the .deb provides something:\n%s", info)
		}
		dir := t.TempDir()
		mustRun(t, time.Minute, "", nil, "dpkg-deb", "-x", debPath, dir)
		checkBinariesRun(t, "deb", dir, want)

		for p := range want {
			if !strings.HasPrefix(p, ManDir) {
				continue
			}
			out, err := runBounded(time.Minute, "", []string{"MANWIDTH=80", "MANPAGER=cat", "PAGER=cat"}, "man", "-l", filepath.Join(dir, p))
			if err != nil || !strings.Contains(out, "NAME") || strings.Contains(out, "warning:") {
				t.Errorf("man -l %s: %v\n%s", p, err, tail(out, 2000))
			}
		}

		// The unit, with its helper's path pointed into the extracted tree:
		// systemd-analyze reports unknown keys or missing programs.
		unit, err := os.ReadFile(filepath.Join(dir, UnitDir, "uml-switch.service"))
		if err != nil {
			t.Fatal(err)
		}
		vdir := t.TempDir()
		vunit := filepath.Join(vdir, "uml-switch.service")
		if err := os.WriteFile(vunit, []byte(strings.ReplaceAll(string(unit), HelperDir+"/", dir+HelperDir+"/")), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := runBounded(time.Minute, vdir, nil, "systemd-analyze", "verify", vunit); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify uml-switch.service: %v\n%s", err, out)
		}

		checkSysvScriptMasked(t, dir)
		checkDpkgReplaces(t, debPath)
	})

	t.Run("rpmbuild", func(t *testing.T) {
		mustRun(t, 5*time.Minute, root, nil, "make", "dist")
		tarball := only(t, filepath.Join(root, "dist", "umlutils-"+version+".tar.gz"))
		listing := mustRun(t, time.Minute, "", nil, "tar", "tzf", tarball)
		for _, f := range []string{"/VERSION\n", "/packaging/umlutils.spec\n", "/go.mod\n", "/Makefile\n"} {
			if !strings.Contains(listing, f) {
				t.Errorf("the tarball lacks %s", strings.TrimSpace(f))
			}
		}
		if strings.Contains(listing, "/dist/") || strings.Contains(listing, "/.git/") {
			t.Errorf("the tarball holds build output or git data")
		}
		if _, err := os.Stat(filepath.Join(root, "vendor")); err == nil {
			t.Errorf("make dist left vendor/ in the tree")
		}
		// Offline: no proxy, and a module cache with nothing in it, so only
		// the tarball's vendored modules can satisfy the build. rpmbuild
		// would check BuildRequires against this host's (empty) RPM
		// database, hence --nodeps.
		top := t.TempDir()
		env := []string{"GOFLAGS=-mod=vendor", "GOPROXY=off", "GOMODCACHE=" + t.TempDir(), "GOTOOLCHAIN=local"}
		mustRun(t, 10*time.Minute, root, env, "rpmbuild", "-bb", "--nodeps",
			"--define", "_topdir "+top, "--define", "_sourcedir "+filepath.Join(root, "dist"),
			filepath.Join(root, "dist", "umlutils.spec"))
		built := only(t, filepath.Join(top, "RPMS", "*", "umlutils-"+version+"-1.*.rpm"))
		got, nfpm := rpmFiles(t, built), rpmFiles(t, rpmPath)
		if !reflect.DeepEqual(got, nfpm) {
			t.Errorf("rpmbuild's package and make rpm's differ:\nrpmbuild: %v\nnfpm:     %v", got, nfpm)
		}
		for _, q := range []string{"obsoletes", "conflicts", "provides", "recommends", "suggests"} {
			lines := func(rpm string) []string {
				var ls []string
				for _, l := range strings.Split(strings.TrimSpace(mustRun(t, time.Minute, "", nil, "rpm", "-qp", "--"+q, rpm)), "\n") {
					// rpmbuild adds an arch-qualified provide of the name.
					if !strings.HasPrefix(l, "umlutils(") {
						ls = append(ls, l)
					}
				}
				sort.Strings(ls)
				return ls
			}
			if a, b := lines(built), lines(rpmPath); !reflect.DeepEqual(a, b) {
				t.Errorf("--%s: rpmbuild %q, nfpm %q", q, a, b)
			}
		}
		dir := t.TempDir()
		extractRPM(t, built, dir)
		checkBinariesRun(t, "rpmbuild", dir, expectedFiles(t, root, RPM))
	})
}

// checkSysvScriptMasked runs systemd's SysV generator over a copy of
// Debian's /etc/init.d/uml-utilities enabled in runlevel 2, once without and
// once with the package's units: with them it must generate nothing, so the
// old script never starts a second switch beside uml-switch.service.
func checkSysvScriptMasked(t *testing.T, extracted string) {
	t.Helper()
	gen := "/lib/systemd/system-generators/systemd-sysv-generator"
	script := "/etc/init.d/uml-utilities"
	for _, f := range []string{gen, script} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s is needed (Debian packages systemd and uml-utilities): %v", f, err)
		}
	}
	sysv := t.TempDir()
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"init.d", "rc2.d"} {
		if err := os.MkdirAll(filepath.Join(sysv, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sysv, "init.d", "uml-utilities"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../init.d/uml-utilities", filepath.Join(sysv, "rc2.d", "S01uml-utilities")); err != nil {
		t.Fatal(err)
	}
	generated := func(unitPath string) bool {
		out := t.TempDir()
		for _, d := range []string{"n", "e", "l"} {
			if err := os.Mkdir(filepath.Join(out, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		env := []string{"SYSTEMD_SYSVINIT_PATH=" + filepath.Join(sysv, "init.d"), "SYSTEMD_SYSVRCND_PATH=" + sysv, "SYSTEMD_UNIT_PATH=" + unitPath}
		mustRun(t, time.Minute, "", env, gen, filepath.Join(out, "n"), filepath.Join(out, "e"), filepath.Join(out, "l"))
		_, err := os.Stat(filepath.Join(out, "l", "uml-utilities.service"))
		return err == nil
	}
	if !generated(t.TempDir()) {
		t.Fatalf("control: the SysV generator made no uml-utilities.service from Debian's script")
	}
	if generated(filepath.Join(extracted, UnitDir)) {
		t.Errorf("with the package's units, the SysV generator still runs /etc/init.d/uml-utilities")
	}
}

// checkDpkgReplaces unpacks the .deb with dpkg into a scratch root whose
// database has uml-utilities installed: dpkg must take the package's place.
// Only unpacking: no maintainer script runs.
func checkDpkgReplaces(t *testing.T, deb string) {
	t.Helper()
	root := t.TempDir()
	admin := filepath.Join(root, "var", "lib", "dpkg")
	for _, d := range []string{"info", "updates"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	status := "Package: uml-utilities\nStatus: install ok installed\nPriority: optional\nSection: otherosfs\n" +
		"Maintainer: test <test@umlutils.invalid>\nArchitecture: amd64\nVersion: 20070815.4-1.6\nDescription: stand-in for the C package\n\n"
	if err := os.WriteFile(filepath.Join(admin, "status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(admin, "info", "uml-utilities.list"), []byte("/usr\n/usr/bin\n/usr/bin/uml_switch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, 2*time.Minute, "", nil, "dpkg", "--root="+root, "--unpack", deb)
	out := mustRun(t, time.Minute, "", nil, "dpkg-query", "--admindir="+admin, "-W", "-f", "${Package} ${db:Status-Abbrev}\n")
	if !strings.Contains(out, "umlutils iU") || strings.Contains(out, "uml-utilities ii") {
		t.Errorf("after unpacking umlutils over uml-utilities:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(root, "usr", "lib", "umlutils", "uml-switch-service")); err != nil {
		t.Errorf("dpkg --root unpacked nothing: %v", err)
	}
}
