package packaging

import (
	"bytes"
	"context"
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
