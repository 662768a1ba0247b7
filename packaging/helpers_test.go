package packaging

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// badOption is an option no command has: given it, a command prints its
// usage and exits.
const badOption = "-umlutils-no-such-option"

// projectRoot is the directory holding go.mod, above the test's directory.
func projectRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod in %s: %v", dir, err)
	}
	return dir
}

// runBounded runs argv with a timeout and returns its combined output and
// error; a timeout is an error naming the command.
func runBounded(timeout time.Duration, dir string, env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), errors.New(strings.Join(argv, " ") + ": timed out after " + timeout.String())
	}
	return out.String(), err
}

// usageOf runs a built command with badOption and returns what it printed.
// The command must exit by itself, normally, and print something.
func usageOf(bin string) (string, error) {
	out, err := runBounded(10*time.Second, "", nil, bin, badOption)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return out, err
	}
	if ee != nil && !ee.Exited() {
		return out, errors.New(bin + " " + badOption + ": " + ee.Error())
	}
	if strings.TrimSpace(out) == "" {
		return out, errors.New(bin + " " + badOption + ": printed nothing (want its usage)")
	}
	return out, nil
}

var optionWord = regexp.MustCompile(`(?:^|[\s\[(|,{])(--?[A-Za-z][A-Za-z0-9_-]*)`)

// usageOptions lists the options a usage text names, leaving out badOption,
// which the text may echo back.
func usageOptions(usage string) []string {
	seen := map[string]bool{}
	var opts []string
	for _, m := range optionWord.FindAllStringSubmatch(usage, -1) {
		o := m[1]
		if strings.TrimLeft(o, "-") == strings.TrimLeft(badOption, "-") || seen[o] {
			continue
		}
		seen[o] = true
		opts = append(opts, o)
	}
	return opts
}

var roffFont = regexp.MustCompile(`\\f(\[[^\]]*\]|\(..|.)`)

// manText strips a roff page's font changes and escaped hyphens, so options
// read as typed.
func manText(roff string) string {
	s := roffFont.ReplaceAllString(roff, "")
	s = strings.ReplaceAll(s, `\-`, "-")
	s = strings.ReplaceAll(s, `\(hy`, "-")
	s = strings.ReplaceAll(s, `\(mi`, "-")
	s = strings.ReplaceAll(s, `\&`, "")
	return s
}

// mentions reports whether the page's text names opt as a word of its own.
func mentions(text, opt string) bool {
	re := regexp.MustCompile(`(^|[^A-Za-z0-9_-])` + regexp.QuoteMeta(opt) + `($|[^A-Za-z0-9_-])`)
	return re.MatchString(text)
}

// copyTree copies the project tree at src to dst, leaving out build output
// and git's data.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	skip := map[string]bool{".git": true, "dist": true, "bin": true, "vendor": true}
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && skip[strings.Split(filepath.ToSlash(rel), "/")[0]] {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, 0o755)
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, fi.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatalf("copying the tree: %v", err)
	}
}

// checkStatic fails for an ELF program that needs a dynamic loader:
// umlab-guest runs as a guest's first process, before any libc is there.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New(path + ": dynamically linked (wants a static binary)")
		}
	}
	return nil
}
