package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	specs := []flagSpec{
		{short: "p", long: "parallel", value: true, optional: true},
		{short: "f", long: "fast"},
		{short: "t", long: "timeout", value: true},
		dirFlag,
	}
	for _, c := range []struct {
		name string
		args []string
		want map[string]string
		rest []string
		err  string
	}{
		{"attached value", []string{"-p4", "r1"}, map[string]string{"parallel": "4"}, []string{"r1"}, ""},
		{"separate value", []string{"-p", "4", "r1"}, map[string]string{"parallel": "4"}, []string{"r1"}, ""},
		{"optional value absent", []string{"-p", "r1"}, map[string]string{"parallel": ""}, []string{"r1"}, ""},
		{"long with =", []string{"--parallel=2", "--fast"}, map[string]string{"parallel": "2", "fast": ""}, nil, ""},
		{"after names", []string{"r1", "-f", "-d", "/x"}, map[string]string{"fast": "", "dir": "/x"}, []string{"r1"}, ""},
		{"unknown", []string{"-z"}, nil, nil, "unknown option -z"},
		{"unknown long", []string{"--zap"}, nil, nil, "unknown option --zap"},
		{"missing value", []string{"-t"}, nil, nil, "needs a value"},
		{"value on a flag", []string{"--fast=yes"}, nil, nil, "takes no value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, err := parseFlags(c.args, specs...)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.want {
				if got, ok := fs.vals[k]; !ok || got != v {
					t.Errorf("%s = %q (%v), want %q", k, got, ok, v)
				}
			}
			if strings.Join(fs.rest, " ") != strings.Join(c.rest, " ") {
				t.Errorf("rest %q, want %q", fs.rest, c.rest)
			}
		})
	}
}

// Commands' usage errors exit 2 with a message; a directory that is no lab
// is an error (1) naming it; list works with no lab at all.
func TestRunErrors(t *testing.T) {
	t.Setenv("UMLAB_RUNTIME", t.TempDir())
	notLab := t.TempDir()
	for _, c := range []struct {
		name string
		prog string
		args []string
		code int
		err  string
	}{
		{"no command", "umlab", nil, 2, "usage: umlab"},
		{"unknown command", "umlab", []string{"frob"}, 2, `unknown command "frob"`},
		{"exec without machine", "umlab", []string{"exec"}, 2, "usage: umlab exec"},
		{"exec without command", "umlab", []string{"exec", "-d", notLab, "r1"}, 2, "no command given"},
		{"bad option", "umlab", []string{"start", "--frob"}, 2, "unknown option --frob"},
		{"not a lab", "umlab", []string{"start", "-d", notLab}, 1, "not a lab directory"},
		{"global -d", "umlab", []string{"-d", notLab, "info"}, 1, "not a lab directory"},
		{"alias", "/usr/bin/lstart", []string{"-d", notLab}, 1, "not a lab directory"},
		{"clean takes no names", "umlab", []string{"clean", "r1"}, 2, "no machine names"},
		{"fault usage", "umlab", []string{"fault", "-d", notLab, "link"}, 2, "usage: umlab fault"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.prog, c.args, strings.NewReader(""), &out, &errb)
			if code != c.code || !strings.Contains(errb.String(), c.err) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), c.code, c.err)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run("umlab", []string{"list", "--json"}, nil, &out, &errb); code != 0 || strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("list --json with no labs: %d %q %q", code, out.String(), errb.String())
	}
	os.WriteFile(filepath.Join(notLab, "lab.conf"), []byte("pc1[0=A\n"), 0o644)
	errb.Reset()
	if code := run("umlab", []string{"info", "-d", notLab}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "lab.conf:1") {
		t.Errorf("a malformed lab.conf: %d %q", code, errb.String())
	}
}
