package lab

import (
	"testing"
)

// The expected values were computed outside Go, the way the originals do:
// for Netkit, SHA-1 over umid+ifname ("pc1eth0") and
// addr[i] = (h[i]+h[i+6]) mod 256 with addr[0] &^ 1 | 2, as the Netkit
// kernels' net_kern.c patch does; for Kathará, MD5 over "pc1-0", first six
// bytes, addr[0] | 2 &^ 1, as katharanp's generateMacAddressFromID does.
func TestMACFor(t *testing.T) {
	cases := []struct {
		machine string
		iface   int
		netkit  string
		kathara string
	}{
		{"pc1", 0, "6e:5f:98:37:0c:07", "2e:27:02:bb:72:dc"},
		{"pc1", 1, "8a:a0:af:9d:ff:a1", "c6:4b:73:1d:d8:0e"},
		{"r1", 0, "0e:ab:f8:0c:10:4b", "9e:b6:3a:91:47:e7"},
		{"router_2", 3, "8e:99:6a:b6:22:f1", "56:00:f4:db:a0:f4"},
		{"node01", 0, "22:08:f0:c4:20:3e", "aa:b7:1c:c0:07:dd"},
		{"a", 10, "2a:17:06:10:86:d7", "f6:23:d8:55:0c:8d"},
	}
	for _, c := range cases {
		c := c
		t.Run(c.machine, func(t *testing.T) {
			for _, f := range []Format{FormatNetkit, FormatNetkitJH, FormatUnknown} {
				if got := MACFor(f, c.machine, c.iface).String(); got != c.netkit {
					t.Errorf("MACFor(%s, %s, %d) = %s, want %s", f, c.machine, c.iface, got, c.netkit)
				}
			}
			if got := MACFor(FormatKathara, c.machine, c.iface).String(); got != c.kathara {
				t.Errorf("MACFor(kathara, %s, %d) = %s, want %s", c.machine, c.iface, got, c.kathara)
			}
		})
	}
}

// Every derived MAC is locally administered unicast, for any name.
func TestMACForBits(t *testing.T) {
	names := []string{"", "a", "pc1", "router-with-a-rather-long-name", "x_y.z"}
	for _, f := range []Format{FormatNetkit, FormatNetkitJH, FormatKathara, FormatUnknown} {
		for _, n := range names {
			for i := 0; i < 64; i++ {
				m := MACFor(f, n, i)
				if len(m) != 6 || m[0]&1 != 0 || m[0]&2 == 0 {
					t.Fatalf("MACFor(%s, %q, %d) = %s: not locally administered unicast", f, n, i, m)
				}
			}
		}
	}
}

func TestParseMAC(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{in: "02:42:ac:11:00:02", want: "02:42:ac:11:00:02"},
		{in: "00:1A:2b:3C:4d:5E", want: "00:1a:2b:3c:4d:5e"},
		{in: "01:00:5e:00:00:01", err: "multicast"},
		{in: "ff:ff:ff:ff:ff:ff", err: "multicast"},
		{in: "00:00:00:00:00:00", err: "all-zero"},
		{in: "02:42:ac:11:00", err: "six"},
		{in: "02-42-ac-11-00-02", err: "six"},
		{in: "02:42:ac:11:00:0g", err: "six"},
		{in: "02:42:ac:11:00:022", err: "six"},
		{in: "+2:42:ac:11:00:02", err: "six"},
		{in: "", err: "six"},
	}
	for _, c := range cases {
		c := c
		t.Run(c.in, func(t *testing.T) {
			m, msg := parseMAC(c.in)
			if c.err != "" {
				if msg == "" || !contains(msg, c.err) {
					t.Fatalf("parseMAC(%q) = %v, %q; want error containing %q", c.in, m, msg, c.err)
				}
				return
			}
			if msg != "" || m.String() != c.want {
				t.Fatalf("parseMAC(%q) = %v, %q; want %s", c.in, m, msg, c.want)
			}
		})
	}
}
