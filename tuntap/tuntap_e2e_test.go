//go:build e2e

package tuntap

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
)

// helperEnv marks the test binary re-run inside a namespace: the
// namespace is joined by `ip netns exec` for the whole process (joining it
// from one locked thread is unsafe: /dev/net/tun and netlink act on the
// opener's namespace, and if Go put that goroutine on the main thread, the
// whole process would count as inside and be killed with the namespace).
const helperEnv = "UMLUTILS_TUNTAP_IN_NETNS"

// TestE2EOpenTapAndManage runs TestInNamespace in a namespace of its own.
func TestE2EOpenTapAndManage(t *testing.T) {
	testbed.Get(t)
	ns := testbed.NetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestInNamespace$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestInNamespace") {
		t.Fatalf("inside %s: %v\n%s", ns, err, out)
	}
}

// TestInNamespace (only under TestE2EOpenTapAndManage): OpenTap makes a tap
// that carries one frame per read and honours read deadlines; Create, List
// and Delete manage persistent devices.
func TestInNamespace(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return
	}
	f, err := OpenTap("ut0")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A deadline on an idle tap must fire (the fd is in the poller).
	_ = f.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := f.Read(make([]byte, 2048)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on an idle tap: %v, want a deadline error", err)
	}
	// Traffic from the namespace's stack comes out as whole frames: an
	// ARP request for a neighbour on the tap's subnet.
	for _, argv := range [][]string{
		{"ip", "addr", "add", "10.77.0.1/24", "dev", "ut0"},
		{"ip", "link", "set", "ut0", "up"},
	} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", argv, err, out)
		}
	}
	ping := exec.Command("ping", "-c", "1", "-W", "1", "10.77.0.2")
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ping.Process.Kill(); _ = ping.Wait() }()
	buf := make([]byte, 2048)
	_ = f.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatalf("no ARP request on the tap: %v", err)
		}
		if n >= 42 && binary.BigEndian.Uint16(buf[12:14]) == 0x0806 {
			if target := buf[38:42]; string(target) != string([]byte{10, 77, 0, 2}) {
				t.Fatalf("ARP for %v, want 10.77.0.2", target)
			}
			break
		}
	}

	func() {
		name, err := Create(CloneDevice, "ut%d", Tun, 1234, NoID)
		if err != nil || name != "ut1" {
			t.Errorf("Create = %q, %v", name, err)
		}
		devs, err := List()
		if err != nil {
			t.Error(err)
			return
		}
		want := []Info{
			{Name: "ut0", Kind: Tap, Persist: false, Owner: NoID, Group: NoID},
			{Name: "ut1", Kind: Tun, Persist: true, Owner: 1234, Group: NoID},
		}
		if len(devs) != 2 {
			t.Errorf("List = %+v", devs)
			return
		}
		for i := range devs {
			devs[i].Index, devs[i].Queues = 0, 0
			if devs[i] != want[i] {
				t.Errorf("List[%d] = %+v, want %+v", i, devs[i], want[i])
			}
		}
		if err := Delete(CloneDevice, "ut1"); err != nil {
			t.Errorf("Delete: %v", err)
		}
		if _, err := Lookup("ut1"); !errors.Is(err, ErrNoDevice) {
			t.Errorf("ut1 after Delete: %v", err)
		}
		if err := Delete(CloneDevice, "ut1"); !errors.Is(err, ErrNoDevice) {
			t.Errorf("Delete of a missing device: %v", err)
		}
	}()
}
