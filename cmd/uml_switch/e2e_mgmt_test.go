//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
)

// A UML 6.1 guest on the daemon transport and a UML 7.x guest on bess ping
// each other through one switch; the management socket lists them, and
// link down/up, loss and delay set there are what the guests' ping sees.
func TestE2EDaemonAndBessGuestsWithFaults(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_switch")
	ctl := b.Tool(t, "uml_switchctl")
	dir := t.TempDir()
	swCtl, bess, mgmt := filepath.Join(dir, "sw.ctl"), filepath.Join(dir, "bess"), filepath.Join(dir, "mgmt")
	testbed.Start(t, ours, "-unix", swCtl, "-bess", bess, "-mgmt", mgmt)
	testbed.WaitForFile(t, mgmt, 5*time.Second)
	wait := func(name string) string {
		return fmt.Sprintf("while [ ! -e %s ]; do sleep 0.1; done\n", filepath.Join(dir, name))
	}
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	modern := b.Boot(t, testbed.GuestConfig{Kernel: testbed.Modern, Timeout: 170 * time.Second,
		Args: []string{"vec0:transport=bess,dst=" + bess},
		Script: `ip link set vec0 up && ip addr add 10.0.5.2/24 dev vec0
echo "MODERN-UP $(cat /sys/class/net/vec0/address)"
` + wait("end")})
	legacy := b.Boot(t, testbed.GuestConfig{Timeout: 170 * time.Second,
		Args: []string{"eth0=daemon,,unix," + swCtl},
		Script: `ip addr add 10.0.5.1/24 dev eth0 && ip link set eth0 up
echo "LEGACY-UP $(cat /sys/class/net/eth0/address)"
` + wait("go") + `ping -c 3 -i 0.2 -W 5 10.0.5.2 && echo BASIC-OK
` + wait("updown") + `ping -c 50 -i 0.2 -W 1 10.0.5.2; echo UPDOWN-DONE
` + wait("loss") + `ping -q -c 100 -i 0.05 -W 1 10.0.5.2; echo LOSS-DONE
` + wait("base") + `ping -q -c 10 -i 0.2 -W 2 10.0.5.2; echo BASE-DONE
` + wait("delay") + `ping -q -c 10 -i 0.2 -W 2 10.0.5.2; echo DELAY-DONE
` + wait("end")})
	macRe := regexp.MustCompile(`(?:MODERN|LEGACY)-UP ([0-9a-f:]{17})`)
	mm := macRe.FindStringSubmatch(modern.WaitFor("MODERN-UP", 60*time.Second))
	lm := macRe.FindStringSubmatch(legacy.WaitFor("LEGACY-UP", 60*time.Second))
	if mm == nil || lm == nil {
		t.Fatal("guests did not print their MACs")
	}
	switchctl := func(args ...string) string {
		out, err := testbed.Run(append([]string{ctl, mgmt}, args...)...)
		if err != nil {
			t.Fatalf("uml_switchctl %v: %v: %s", args, err, out)
		}
		return out
	}
	touch("go")
	legacy.WaitFor("BASIC-OK", 30*time.Second)

	// Both MACs are listed within a second of the traffic.
	type macEntry struct {
		MAC  string `json:"mac"`
		Port int    `json:"port"`
	}
	var macs []macEntry
	deadline := time.Now().Add(time.Second)
	portOf := map[string]int{}
	for {
		macs = nil
		if err := json.Unmarshal([]byte(switchctl("macs", "json")), &macs); err != nil {
			t.Fatalf("macs json: %v", err)
		}
		for _, m := range macs {
			portOf[m.MAC] = m.Port
		}
		if _, ok := portOf[mm[1]]; ok {
			if _, ok := portOf[lm[1]]; ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("guests' MACs %s %s not listed: %+v", mm[1], lm[1], macs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ports []struct {
		ID        int    `json:"id"`
		Transport string `json:"transport"`
	}
	if err := json.Unmarshal([]byte(switchctl("ports", "json")), &ports); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, p := range ports {
		kinds[p.Transport] = p.ID
	}
	if _, ok := kinds["bess"]; !ok || kinds["bess"] != portOf[mm[1]] {
		t.Fatalf("the bess guest's port: ports %+v, macs %+v", ports, macs)
	}
	port := strconv.Itoa(portOf[mm[1]])

	// Link down for 2 s in a ping at 0.2 s intervals, then up again.
	touch("updown")
	legacy.WaitFor("icmp_seq=5 ", 30*time.Second)
	switchctl("port", port, "down")
	time.Sleep(2 * time.Second)
	switchctl("port", port, "up")
	out := legacy.WaitFor("UPDOWN-DONE", 40*time.Second)
	var seqs []int
	for _, m := range regexp.MustCompile(`from 10\.0\.5\.2: icmp_seq=(\d+)`).FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		seqs = append(seqs, n)
	}
	gap := 0
	for i := 1; i < len(seqs); i++ {
		gap = max(gap, seqs[i]-seqs[i-1]-1)
	}
	if gap < 7 || len(seqs) == 0 || seqs[len(seqs)-1] < 45 {
		t.Errorf("down/up not seen by ping: longest gap %d, replies %v", gap, seqs)
	}

	// 50 % loss on frames to the bess guest: 50 ± 15 % ping loss.
	switchctl("port", port, "loss", "50")
	touch("loss")
	out = legacy.WaitFor("LOSS-DONE", 60*time.Second)
	switchctl("port", port, "clear")
	lm2 := regexp.MustCompile(`(\d+(?:\.\d+)?)% packet loss`).FindAllStringSubmatch(out, -1)
	if lm2 == nil {
		t.Fatalf("no loss summary:\n%s", out)
	}
	if loss, _ := strconv.ParseFloat(lm2[len(lm2)-1][1], 64); loss < 35 || loss > 65 {
		t.Errorf("loss 50 gave %v%% ping loss", loss)
	}

	// delay 100 raises the guest-measured round trip by 100 ± 20 ms.
	rttRe := regexp.MustCompile(`rtt min/avg/max/mdev = [\d.]+/([\d.]+)/`)
	touch("base")
	out = legacy.WaitFor("BASE-DONE", 30*time.Second)
	rm := rttRe.FindAllStringSubmatch(out, -1)
	switchctl("port", port, "delay", "100")
	touch("delay")
	out2 := legacy.WaitFor("DELAY-DONE", 30*time.Second)
	dm := rttRe.FindAllStringSubmatch(out2, -1)
	if rm == nil || dm == nil {
		t.Fatalf("no rtt summaries:\n%s", out2)
	}
	base, _ := strconv.ParseFloat(rm[len(rm)-1][1], 64)
	delayed, _ := strconv.ParseFloat(dm[len(dm)-1][1], 64)
	if d := delayed - base; d < 80 || d > 120 {
		t.Errorf("delay 100 raised the RTT by %.1f ms (%.1f -> %.1f)", d, base, delayed)
	}
	if s := switchctl("ports"); !strings.Contains(s, "delay_out=100ms") {
		t.Errorf("ports listing lacks the delay: %s", s)
	}
	touch("end")
}
