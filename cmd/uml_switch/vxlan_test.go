package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
)

// -vxlan: a bad specification or a local endpoint that cannot be bound is
// an error naming it, exit 1, and no socket file left behind.
func TestVXLANBadArguments(t *testing.T) {
	dir := t.TempDir()
	used, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer used.Close()
	ctl := filepath.Join(dir, "z")
	for _, c := range []struct{ spec, want string }{
		{"vni=1", "needs vni= and local="},
		{"vni=99999999,local=127.0.0.1", "vni \"99999999\""},
		{"vni=1,local=127.0.0.1,remote=::1", "address families"},
		{"vni=1,local=127.0.0.1,port=3", "unknown key"},
		{"vni=1,local=" + used.LocalAddr().String(), "vxlan local " + used.LocalAddr().String()},
	} {
		var out, errOut bytes.Buffer
		code := runCtx(context.Background(), []string{"uml_switch", "-unix", ctl, "-vxlan", c.spec}, nil, &out, &errOut, nil)
		if code != 1 || !strings.HasPrefix(errOut.String(), "uml_switch: ") || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("-vxlan %s: exit %d, stderr %q (want %q)", c.spec, code, errOut.String(), c.want)
		}
		if _, err := os.Stat(ctl); err == nil {
			t.Errorf("-vxlan %s: left a socket file behind", c.spec)
		}
	}
}

// Two -vxlan uplinks: each announced, each listed by "vxlan json".
func TestVXLANFlag(t *testing.T) {
	dir := t.TempDir()
	ctl, mg := filepath.Join(dir, "sw.ctl"), filepath.Join(dir, "mgmt")
	stdout, _, stop := startRun(t, "-unix", ctl, "-mgmt", mg,
		"-vxlan", "vni=10,local=127.0.0.21:0,remote=127.0.0.22:4789,remote=127.0.0.23",
		"-vxlan", "vni=20,local=127.0.0.21:0")
	testbed.WaitForFile(t, mg, 5*time.Second)
	c, err := net.Dial("unix", mg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	if _, err := c.Write([]byte("vxlan json\n")); err != nil {
		t.Fatal(err)
	}
	line, _ := br.ReadString('\n')
	var got []struct {
		VNI     uint32 `json:"vni"`
		Local   string `json:"local"`
		Remotes []struct {
			Remote string `json:"remote"`
		} `json:"remotes"`
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if len(got) != 2 || got[0].VNI != 10 || got[1].VNI != 20 || len(got[0].Remotes) != 2 || got[0].Remotes[1].Remote != "127.0.0.23:4789" {
		t.Fatalf("vxlan json: %s", line)
	}
	if stop() != 0 {
		t.Fatal("exit code")
	}
	out := stdout.String()
	if strings.Count(out, "uml_switch vxlan vni ") != 2 || !strings.Contains(out, "vni 10 on 127.0.0.21:") {
		t.Fatalf("status lines:\n%s", out)
	}
}
