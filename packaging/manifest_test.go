package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// fakeTree is a project tree with the given commands and man pages, and the
// packaging files Manifest needs.
func fakeTree(t *testing.T, cmds []string, pages []string) string {
	t.Helper()
	root := t.TempDir()
	for _, c := range cmds {
		if err := os.MkdirAll(filepath.Join(root, "cmd", c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := append([]string{"LICENSE", "packaging/uml-switch.service", "packaging/uml-switch-service",
		"packaging/sysusers.conf", "packaging/tmpfiles.conf"}, pages...)
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func dsts(es []Entry) map[string]Entry {
	m := map[string]Entry{}
	for _, e := range es {
		m[e.Dst] = e
	}
	return m
}

func TestManifestLayout(t *testing.T) {
	root := fakeTree(t, []string{"uml_moo", "tunctl", "port-helper"},
		[]string{"man/uml_moo.1", "man/tunctl.8", "man/port-helper.8", "man/README"})
	for _, p := range []Packager{Deb, RPM} {
		es, err := Manifest(root, p, []string{"port-helper"})
		if err != nil {
			t.Fatal(err)
		}
		m := dsts(es)
		want := map[string]os.FileMode{
			"/usr/bin/uml_moo":                           0o755,
			"/usr/bin/tunctl":                            0o755,
			"/usr/lib/uml/port-helper":                   0o755,
			"/usr/share/man/man1/uml_moo.1.gz":           0o644,
			"/usr/share/man/man8/tunctl.8.gz":            0o644,
			"/usr/share/man/man8/port-helper.8.gz":       0o644,
			"/usr/lib/systemd/system/uml-switch.service": 0o644,
			"/usr/lib/umlutils/uml-switch-service":       0o755,
			"/usr/lib/sysusers.d/umlutils.conf":          0o644,
			"/usr/lib/tmpfiles.d/umlutils.conf":          0o644,
			"/usr/share/doc/umlutils/LICENSE":            0o644,
		}
		for dst, mode := range want {
			e, ok := m[dst]
			if !ok || e.Kind != File || e.Mode != mode {
				t.Errorf("%s: %s: got %+v, want a file of mode %04o", p, dst, e, mode)
			}
		}
		if _, ok := m["/usr/bin/port-helper"]; ok {
			t.Errorf("%s: port-helper also in /usr/bin", p)
		}
		if e := m["/usr/lib/systemd/system/uml-utilities.service"]; e.Kind != Symlink || e.Src != "uml-switch.service" {
			t.Errorf("%s: uml-utilities.service is %+v, want a link to uml-switch.service", p, e)
		}
		l64, ok := m["/usr/lib64/uml/port-helper"]
		if p == RPM && (!ok || l64.Kind != Symlink || l64.Src != "../../lib/uml/port-helper") {
			t.Errorf("rpm: /usr/lib64/uml/port-helper is %+v, want a link to ../../lib/uml/port-helper", l64)
		}
		if p == Deb && ok {
			t.Errorf("deb: has /usr/lib64/uml/port-helper")
		}
		if _, ok := m["/usr/share/doc/umlutils/README.md"]; ok {
			t.Errorf("%s: README.md packaged though the tree has none", p)
		}
		if !m["/usr/share/doc/umlutils/LICENSE"].License {
			t.Errorf("%s: LICENSE not marked as the license", p)
		}
	}
}

// TestManifestUmlab checks umlab's share of the packages: umlab on PATH
// with its Netkit names as links to it (and to its page), umlab-guest
// beside port-helper and nowhere else.
func TestManifestUmlab(t *testing.T) {
	root := fakeTree(t, []string{"umlab", "umlab-guest", "port-helper"},
		[]string{"man/umlab.1", "man/umlab-guest.8", "man/port-helper.8"})
	for _, p := range []Packager{Deb, RPM} {
		es, err := Manifest(root, p, DefaultLibexec)
		if err != nil {
			t.Fatal(err)
		}
		m := dsts(es)
		for _, dst := range []string{"/usr/bin/umlab", "/usr/lib/uml/umlab-guest", "/usr/share/man/man1/umlab.1.gz", "/usr/share/man/man8/umlab-guest.8.gz"} {
			if e := m[dst]; e.Kind != File || e.Src == "" {
				t.Errorf("%s: %s is %+v, want a file", p, dst, e)
			}
		}
		for _, dst := range []string{"/usr/bin/umlab-guest", "/usr/lib64/uml/umlab-guest", "/usr/share/man/man1/umlab-guest.1.gz"} {
			if _, ok := m[dst]; ok {
				t.Errorf("%s: has %s", p, dst)
			}
		}
		if _, ok := m["/usr/lib64/uml/port-helper"]; ok != (p == RPM) {
			t.Errorf("%s: /usr/lib64/uml/port-helper present: %v", p, ok)
		}
		if len(UmlabAliases) != 5 {
			t.Errorf("UmlabAliases = %v, want Netkit's lstart, lhalt, lcrash, lclean and linfo", UmlabAliases)
		}
		for _, a := range UmlabAliases {
			if e := m["/usr/bin/"+a]; e.Kind != Symlink || e.Src != "umlab" {
				t.Errorf("%s: /usr/bin/%s is %+v, want a link to umlab", p, a, e)
			}
			if e := m["/usr/share/man/man1/"+a+".1.gz"]; e.Kind != Symlink || e.Src != "umlab.1.gz" || !e.Gzip {
				t.Errorf("%s: the %s page is %+v, want a link to umlab.1.gz", p, a, e)
			}
		}
	}
	// A tree without umlab gets no aliases, and without its page no page
	// links (which would dangle).
	root = fakeTree(t, []string{"uml_moo"}, nil)
	es, err := Manifest(root, Deb, DefaultLibexec)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := dsts(es)["/usr/bin/lstart"]; ok {
		t.Errorf("lstart packaged without umlab: %+v", e)
	}
	root = fakeTree(t, []string{"umlab"}, nil)
	es, err = Manifest(root, Deb, DefaultLibexec)
	if err != nil {
		t.Fatal(err)
	}
	m := dsts(es)
	if _, ok := m["/usr/bin/lstart"]; !ok {
		t.Errorf("no lstart beside umlab")
	}
	if e, ok := m["/usr/share/man/man1/lstart.1.gz"]; ok {
		t.Errorf("a page link without umlab's page: %+v", e)
	}
	if _, ok := m[LibexecDir]; ok {
		t.Errorf("%s packaged with nothing in it", LibexecDir)
	}
}

func TestManifestFailsClearly(t *testing.T) {
	root := fakeTree(t, nil, nil)
	if _, err := Manifest(root, Deb, nil); err == nil || !strings.Contains(err.Error(), "no commands under cmd/") {
		t.Errorf("no commands: got %v", err)
	}
	root = fakeTree(t, []string{"uml_moo"}, nil)
	os.Remove(filepath.Join(root, "packaging", "tmpfiles.conf"))
	if _, err := Manifest(root, Deb, nil); err == nil || !strings.Contains(err.Error(), "tmpfiles.conf") {
		t.Errorf("missing tmpfiles.conf: got %v", err)
	}
	if _, err := Manifest(root, "apk", nil); err == nil {
		t.Errorf("unknown packager accepted")
	}
}

// fileSet is a package's paths with their kind and mode, as the RPM %files
// list or the nfpm config states them.
type fileSet map[string]string

var (
	rpmLine  = regexp.MustCompile(`^(%dir )?(%doc |%license )?(?:%attr\((\d+),root,root\) )?(/\S+)$`)
	nfpmItem = regexp.MustCompile(`(?m)^  - (?:src: "([^"]*)"\n    )?dst: "([^"]*)"\n(?:    type: (\S+)\n)?(?:    file_info: \{mode: 0(\d+), owner: root, group: root\}\n)?`)
)

func parseRPMFiles(t *testing.T, list string) fileSet {
	t.Helper()
	fs := fileSet{}
	for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
		m := rpmLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("RPM file list: unexpected line %q", l)
		}
		kind := "file"
		switch {
		case m[1] != "":
			kind = "dir"
		case m[3] == "":
			kind = "symlink"
		}
		path := m[4]
		if strings.HasSuffix(path, "*") {
			path = strings.TrimSuffix(path, "*") + ".gz"
		}
		fs[path] = kind + " " + m[3] + " " + strings.TrimSpace(m[2])
	}
	return fs
}

func parseNFPM(t *testing.T, cfg string) fileSet {
	t.Helper()
	fs := fileSet{}
	i := strings.Index(cfg, "\ncontents:\n")
	if i < 0 {
		t.Fatalf("nfpm config without contents:\n%s", cfg)
	}
	items := cfg[i+len("\ncontents:\n"):]
	for _, m := range nfpmItem.FindAllStringSubmatch(items, -1) {
		kind, mark := "file", ""
		switch m[3] {
		case "dir", "symlink":
			kind = m[3]
		case "doc", "license":
			mark = "%" + m[3]
		}
		mode := m[4]
		if mode != "" {
			mode = "0" + mode
		}
		fs[m[2]] = kind + " " + mode + " " + mark
	}
	if n := strings.Count("\n"+items, "\n  - "); n != len(fs) {
		t.Fatalf("nfpm contents: parsed %d of %d items:\n%s", len(fs), strings.Count("\n"+items, "\n  - "), items)
	}
	return fs
}

// TestRPMFilesMatchNFPM is the sync check between the two ways packages are
// built: the spec's %files list and nfpm's contents come from one manifest
// and must state the same paths, kinds, modes and doc marks.
func TestRPMFilesMatchNFPM(t *testing.T) {
	root := fakeTree(t, []string{"uml_switch", "uml_moo", "tunctl", "port-helper", "umlab", "umlab-guest"},
		[]string{"man/uml_switch.1", "man/uml_moo.1", "man/tunctl.8", "man/umlab.1", "man/umlab-guest.8", "README.md"})
	es, err := Manifest(root, RPM, DefaultLibexec)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(filepath.Join(projectRoot(t), "packaging", "nfpm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := NFPMConfig(tmpl, es, RPM, "dist/rpm/root")
	if err != nil {
		t.Fatal(err)
	}
	fromSpec := parseRPMFiles(t, RPMFiles(es))
	fromNFPM := parseNFPM(t, string(cfg))
	for _, fs := range []fileSet{fromSpec, fromNFPM} {
		for p, v := range fs {
			if strings.HasPrefix(v, "symlink") {
				fs[p] = "symlink"
			}
		}
	}
	if !reflect.DeepEqual(fromSpec, fromNFPM) {
		t.Errorf("the RPM file list and nfpm's contents differ:\nspec: %v\nnfpm: %v", fromSpec, fromNFPM)
	}
	for _, p := range []string{"/usr/bin/lstart", "/usr/share/man/man1/lstart.1.gz", "/usr/lib/uml/umlab-guest"} {
		if _, ok := fromSpec[p]; !ok {
			t.Errorf("the RPM file list lacks %s", p)
		}
	}
	if !strings.Contains(RPMFiles(es), "\n/usr/share/man/man1/lstart.1*\n") {
		t.Errorf("the link to umlab's page is not globbed in the RPM file list (brp-compress may rename it):\n%s", RPMFiles(es))
	}
	if fromSpec["/usr/share/doc/umlutils/README.md"] != "file 0644 %doc" {
		t.Errorf("README.md: %q, want a %%doc file", fromSpec["/usr/share/doc/umlutils/README.md"])
	}
	// The .deb gets no RPM-only marks (nfpm would drop such files from it).
	deb, err := Manifest(root, Deb, DefaultLibexec)
	if err != nil {
		t.Fatal(err)
	}
	dcfg, err := NFPMConfig(tmpl, deb, Deb, "dist/deb/root")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(dcfg[len(tmpl):]), "type: doc") || strings.Contains(string(dcfg[len(tmpl):]), "type: license") {
		t.Errorf("deb contents carry RPM-only types:\n%s", dcfg[len(tmpl):])
	}
	if _, err := NFPMConfig([]byte("name: x\n"), es, RPM, "x"); err == nil {
		t.Errorf("a template without a final contents: key was accepted")
	}
}

func TestStage(t *testing.T) {
	root := fakeTree(t, []string{"uml_moo", "port-helper", "umlab", "umlab-guest"}, []string{"man/uml_moo.1", "man/umlab.1"})
	bin := t.TempDir()
	for _, c := range []string{"uml_moo", "port-helper", "umlab", "umlab-guest"} {
		if err := os.WriteFile(filepath.Join(bin, c), []byte("#!/bin/sh\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	es, err := Manifest(root, RPM, DefaultLibexec)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	if err := Stage(es, root, bin, dest); err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		p := filepath.Join(dest, e.Dst)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", e.Dst, err)
			continue
		}
		switch e.Kind {
		case Symlink:
			if l, _ := os.Readlink(p); l != e.Src {
				t.Errorf("%s -> %q, want %q", e.Dst, l, e.Src)
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: dangling: %v", e.Dst, err)
			}
		default:
			if fi.Mode().Perm() != e.Mode {
				t.Errorf("%s: mode %v, want %04o", e.Dst, fi.Mode(), e.Mode)
			}
		}
	}
	out, err := exec.Command("zcat", filepath.Join(dest, "/usr/share/man/man1/uml_moo.1.gz")).Output()
	if err != nil || string(out) != "man/uml_moo.1\n" {
		t.Errorf("staged man page reads %q, %v", out, err)
	}
}

// TestManPages checks the tree's own commands: each has its page in the
// right section, and the page names every option its usage text names.
// Commands not written yet are simply not there to check.
func TestManPages(t *testing.T) {
	root := projectRoot(t)
	cmds, err := Commands(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) == 0 {
		t.Log("no commands under cmd/ yet")
	}
	bin := t.TempDir()
	for _, c := range cmds {
		t.Run(c, func(t *testing.T) {
			page := filepath.Join(root, "man", c+"."+ManSection(c))
			roff, err := os.ReadFile(page)
			if err != nil {
				t.Fatalf("%s has no man page: %v", c, err)
			}
			out := filepath.Join(bin, c)
			if msg, err := runBounded(3*time.Minute, root, nil, "go", "build", "-o", out, "./cmd/"+c); err != nil {
				t.Fatalf("go build ./cmd/%s: %v\n%s", c, err, msg)
			}
			usage, err := usageOf(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, usage)
			}
			text := manText(string(roff))
			for _, o := range usageOptions(usage) {
				if !mentions(text, o) {
					t.Errorf("%s: option %s (in its usage) is not in %s", c, o, page)
				}
			}
		})
	}
	// A page for a command must be in that command's section only.
	pages, err := ManPages(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		for _, c := range cmds {
			if p.Name == c && p.Section != ManSection(c) {
				t.Errorf("%s: %s belongs in section %s", p.Path, c, ManSection(c))
			}
		}
	}
}

func TestUsageOptionsAndManText(t *testing.T) {
	goFlag := "flag provided but not defined: " + badOption + "\nUsage of uml_switch:\n  -hub\n    \tbe a hub\n  -tap string\n    \ttap device\n  -unix string\n"
	cUsage := "Usage: tunctl [-b] [-u owner] [-g group] [-t device-name] [-f tun-clone-device]\n       tunctl -d device-name\n"
	if got, want := usageOptions(goFlag), []string{"-hub", "-tap", "-unix"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Go flag usage: %v, want %v", got, want)
	}
	if got, want := usageOptions(cUsage), []string{"-b", "-u", "-g", "-t", "-f", "-d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("C usage: %v, want %v", got, want)
	}
	text := manText(".TP\n\\fB\\-tap\\fR \\fIname\\fP\n.B \\-hub\n\\f(BI\\-unix\\fP")
	for _, o := range []string{"-tap", "-hub", "-unix"} {
		if !mentions(text, o) {
			t.Errorf("%q not found in %q", o, text)
		}
	}
	if mentions(text, "-t") || mentions(text, "-un") {
		t.Errorf("prefix of an option counted as the option")
	}
}

func TestManSection(t *testing.T) {
	for c, want := range map[string]string{"uml_switch": "1", "uml_switchctl": "1", "uml_moo": "1", "uml_mkcow": "1",
		"uml_mconsole": "1", "ptybridge": "1", "tunctl": "8", "uml_watchdog": "8", "port-helper": "8",
		"umlab": "1", "umlab-guest": "8"} {
		if got := ManSection(c); got != want {
			t.Errorf("ManSection(%s) = %s, want %s", c, got, want)
		}
	}
}

// specSection returns the body of a spec section (%post, ...) up to the
// next section.
func specSection(spec, name string) string {
	i := strings.Index(spec, "\n"+name+"\n")
	if i < 0 {
		return ""
	}
	body := spec[i+len(name)+2:]
	if j := regexp.MustCompile(`\n%(post|preun|postun|files|changelog|prep|build|install)\b`).FindStringIndex(body); j != nil {
		body = body[:j[0]+1]
	}
	return strings.TrimRight(body, "\n") + "\n"
}

func specField(spec, field string) []string {
	var vs []string
	for _, l := range strings.Split(spec, "\n") {
		if strings.HasPrefix(l, field+":") {
			vs = append(vs, strings.TrimSpace(strings.TrimPrefix(l, field+":")))
		}
	}
	return vs
}

// yamlList returns the items of a block list `key:` at the given indent.
func yamlList(doc, key, indent string) []string {
	var vs []string
	in := false
	for _, l := range strings.Split(doc, "\n") {
		switch {
		case l == indent+key+":":
			in = true
		case in && strings.HasPrefix(l, indent+"  - "):
			vs = append(vs, strings.TrimPrefix(l, indent+"  - "))
		case in && strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#"):
			in = false
		}
	}
	return vs
}

// TestSpecMatchesNFPM keeps the hand-written spec in step with the nfpm
// config and the maintainer scripts both share.
func TestSpecMatchesNFPM(t *testing.T) {
	root := projectRoot(t)
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	spec, nfpm := read("packaging/umlutils.spec"), read("packaging/nfpm.yaml")
	for sec, script := range map[string]string{"%post": "postinstall.sh", "%preun": "preremove.sh", "%postun": "postremove.sh"} {
		want := strings.TrimPrefix(read("packaging/scripts/"+script), "#!/bin/sh\n")
		if got := specSection(spec, sec); got != want {
			t.Errorf("spec %s differs from packaging/scripts/%s:\n--- spec\n%s--- script\n%s", sec, script, got, want)
		}
		if !strings.Contains(nfpm, "packaging/scripts/"+script) {
			t.Errorf("nfpm.yaml does not use packaging/scripts/%s", script)
		}
	}
	if got := specSection(spec, "%files -f umlutils.files"); strings.TrimSpace(got) != "" {
		t.Errorf("the spec lists files by hand after %%files -f umlutils.files: %q", got)
	}
	if !strings.Contains(spec, "PKG_RPMFILES=umlutils.files") {
		t.Errorf("the spec does not have packaging/stage write umlutils.files")
	}
	if v := specField(spec, "Version"); len(v) != 1 || v[0] != strings.TrimSpace(read("VERSION")) {
		t.Errorf("spec Version %v, VERSION %q", v, read("VERSION"))
	}
	sorted := func(s []string) []string { s = append([]string{}, s...); sort.Strings(s); return s }
	if got, want := sorted(specField(spec, "Conflicts")), sorted(yamlList(nfpm, "conflicts", "    ")); !reflect.DeepEqual(got, want) || len(got) == 0 {
		t.Errorf("spec Conflicts %v, nfpm rpm conflicts %v", got, want)
	}
	if got, want := specField(spec, "Obsoletes"), yamlList(nfpm, "replaces", ""); !reflect.DeepEqual(got, want) || len(got) == 0 {
		t.Errorf("spec Obsoletes %v, nfpm replaces (RPM Obsoletes) %v", got, want)
	}
	if got, want := specField(spec, "Requires"), yamlList(nfpm, "depends", "    "); !reflect.DeepEqual(got, want) {
		t.Errorf("spec Requires %v, nfpm rpm depends %v", got, want)
	}
	// Weak dependencies: the RPM's come from the top-level lists (the rpm
	// override has none of its own); suggests are the .deb's only.
	if got, want := specField(spec, "Recommends"), yamlList(nfpm, "recommends", ""); !reflect.DeepEqual(got, want) || len(got) == 0 {
		t.Errorf("spec Recommends %v, nfpm recommends %v", got, want)
	}
	if got := yamlList(nfpm, "recommends", "    "); len(got) != 0 {
		t.Errorf("nfpm overrides recommends %v: keep the spec's in step", got)
	}
	if got := yamlList(nfpm, "suggests", ""); len(got) != 0 {
		t.Errorf("nfpm suggests %v for both formats; the spec suggests nothing", got)
	}
	if got := specField(spec, "Suggests"); len(got) != 0 {
		t.Errorf("spec Suggests %v: the names suggested are Debian's", got)
	}
	if !strings.Contains(nfpm, "\n  deb:\n    # ") || !reflect.DeepEqual(yamlList(nfpm, "suggests", "    "), []string{"user-mode-linux"}) {
		t.Errorf("the .deb does not suggest user-mode-linux")
	}
	// The long description, word for word (nfpm's follows its synopsis line).
	var desc []string
	in := false
	for _, l := range strings.Split(nfpm, "\n") {
		switch {
		case l == "description: |-":
			in = true
		case in && (l == "" || strings.HasPrefix(l, "  ")):
			desc = append(desc, strings.TrimPrefix(l, "  "))
		case in:
			in = false
		}
	}
	if len(desc) < 2 {
		t.Fatalf("nfpm.yaml: no description block")
	}
	if got, want := strings.TrimSpace(specSection(spec, "%description")), strings.TrimSpace(strings.Join(desc[1:], "\n")); got != want {
		t.Errorf("spec %%description differs from nfpm's description:\n--- spec\n%s\n--- nfpm\n%s", got, want)
	}
	if len(specField(spec, "Provides")) != 0 || strings.Contains(nfpm, "provides:") {
		t.Errorf("umlutils must not claim to provide anything (uml-utilities' uml_net etc. are not carried)")
	}
	for field, key := range map[string]string{"Name": "name", "License": "license", "URL": "homepage", "Summary": "  summary"} {
		want := ""
		for _, l := range strings.Split(nfpm, "\n") {
			if strings.HasPrefix(l, key+": ") {
				want = strings.TrimPrefix(l, key+": ")
			}
		}
		if got := specField(spec, field); len(got) != 1 || got[0] != want {
			t.Errorf("spec %s %v, nfpm %s %q", field, got, key, want)
		}
	}
}
