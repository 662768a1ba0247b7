//go:build e2e

package packaging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// expectedCommands are the commands issue 8 packages. Tests fill in dummies
// for the ones a tree does not have yet, in temporary copies only.
var expectedCommands = []string{
	"uml_switch", "uml_switchctl", "uml_moo", "uml_mkcow", "uml_mconsole",
	"uml_watchdog", "tunctl", "ptybridge", "port-helper",
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

// addDummyCommands gives the tree at root a stand-in command, with a man
// page, for every expected command it lacks, so packages built from a copy
// have their final shape. It returns the names it added. Only ever used on
// temporary copies.
func addDummyCommands(t testing.TB, root string) []string {
	t.Helper()
	var added []string
	for _, c := range expectedCommands {
		if _, err := os.Stat(filepath.Join(root, "cmd", c)); err == nil {
			continue
		}
		dir := filepath.Join(root, "cmd", c)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		src := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tfmt.Fprintln(os.Stderr, \"usage: " + c + " [-v]\")\n\tos.Exit(2)\n}\n"
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		sec := ManSection(c)
		page := ".TH " + strings.ToUpper(c) + " " + sec + "\n.SH NAME\n" + c + " \\- stand-in for a test\n.SH OPTIONS\n.TP\n.B \\-v\nverbose\n"
		if err := os.MkdirAll(filepath.Join(root, "man"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "man", c+"."+sec), []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		added = append(added, c)
	}
	return added
}
