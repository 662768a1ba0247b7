//go:build e2e

package labs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EHAClusterLab boots labs/ha-cluster (heartbeat over the private
// segment and a ptybridge serial cable, a shared disk made by umlab, NFS
// on it, a client) and runs its lesson with the node crash only (the two
// hb_standby moves take a minute each): the client's loop must resume
// after the active node's crash and no acknowledged write may be lost.
// Speed is measured by make bench (scripts/bench-labs.sh, target 30 s), not
// asserted here: on a loaded machine heartbeat's resource scripts take
// longer, so the test allows 120 s. The cable's log must show heartbeat's
// traffic.
func TestE2EHAClusterLab(t *testing.T) {
	sl := shippedLab(t, "ha-cluster")
	dir, umlab, env := sl.dir, sl.umlab, sl.env
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	run := func(ctx context.Context, argv ...string) (string, error) { return sl.run(ctx, env, argv...) }
	t0 := time.Now()
	if out, err := run(ctx, umlab, "start", "-d", dir); err != nil {
		t.Fatalf("umlab start: %v\n%s", err, out)
	}
	t.Logf("umlab start returned after %.1fs", time.Since(t0).Seconds())
	info, _ := run(ctx, umlab, "info", "-d", dir)
	if !strings.Contains(info, "cable1") {
		t.Errorf("umlab info shows no cable:\n%s", info)
	}
	env = append(env, "CRASH_TARGET=120")
	out, err := run(ctx, "bash", filepath.Join(dir, "failover.sh"), "-d", dir, "--crash-only", "--no-restart")
	t.Logf("failover.sh:\n%s", out)
	if err != nil || !strings.Contains(out, "RESULT: PASS") {
		t.Errorf("failover.sh: %v", err)
	}
	var rt string
	if j, err := run(ctx, umlab, "info", "-d", dir, "--json"); err == nil {
		if i := strings.Index(j, `"runtime": "`); i >= 0 {
			rt = j[i+len(`"runtime": "`):]
			rt = rt[:strings.IndexByte(rt, '"')]
		}
	}
	if b, err := os.ReadFile(filepath.Join(rt, "cable-cable1.log")); err != nil || len(b) == 0 {
		t.Errorf("the serial cable's log is empty: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "shared.disk")); err != nil {
		t.Errorf("no shared disk: %v", err)
	}
}
