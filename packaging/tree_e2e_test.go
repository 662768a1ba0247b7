//go:build e2e

package packaging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// expectedCommands are the commands the packages carry (issues 8 and 11). Tests fill in dummies
// for the ones a tree does not have yet, in temporary copies only.
var expectedCommands = []string{
	"uml_switch", "uml_switchctl", "uml_moo", "uml_mkcow", "uml_mconsole",
	"uml_watchdog", "tunctl", "ptybridge", "port-helper", "umlab", "umlab-guest",
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
