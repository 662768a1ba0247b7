package lab

import (
	"crypto/md5"
	"crypto/sha1"
	"net"
	"strconv"
)

// MACFor returns the MAC address the lab format f gives interface iface
// of machine when lab.conf names none. Every scheme is deterministic (the
// same lab gets the same MACs at every start) and yields a locally
// administered unicast address.
//
//   - FormatNetkit, FormatNetkitJH (and FormatUnknown): the Netkit kernels
//     (Netkit 2.8's K2.8 and Netkit-JH's UML builds) compute, when the
//     ethN= argument carries no MAC, h = SHA-1(umid + ifname) over the
//     concatenated strings, e.g. "pc1eth0", and take
//     addr[i] = (h[i] + h[i+6]) mod 256 for i in 0..5, then clear the
//     multicast bit and set the locally-administered bit of addr[0].
//     vstart passes umid=MACHINE, so the input is machine name + "ethN".
//     umlab uses per-lab umids, but hashes the machine name so a lab keeps
//     the MACs it had under Netkit.
//   - FormatKathara: Kathará's Docker network plugin (katharanp) hashes
//     MD5("MACHINE-N") (N the interface number in decimal), takes the
//     first 6 bytes and sets addr[0] = (addr[0] | 0x02) & 0xfe. Released
//     Kathará versions do not pass the machine name to the plugin, which
//     then hashes Docker's random network and endpoint ids instead, so a
//     lab's MACs change at every start; umlab uses the plugin's
//     machine-and-interface recipe so they stay stable.
func MACFor(f Format, machine string, iface int) net.HardwareAddr {
	if f == FormatKathara {
		h := md5.Sum([]byte(machine + "-" + strconv.Itoa(iface)))
		mac := make(net.HardwareAddr, 6)
		copy(mac, h[:6])
		mac[0] = (mac[0] | 0x02) &^ 0x01
		return mac
	}
	h := sha1.Sum([]byte(machine + "eth" + strconv.Itoa(iface)))
	mac := make(net.HardwareAddr, 6)
	for i := range mac {
		mac[i] = h[i] + h[i+6] // byte arithmetic wraps: mod 256 as in the C code
	}
	mac[0] = (mac[0] &^ 0x01) | 0x02
	return mac
}

// parseMAC accepts exactly the six colon-separated hex pairs Kathará accepts
// (its Interface model's regular expression), and refuses what UML refuses
// as a device address: multicast/broadcast and all-zero.
func parseMAC(s string) (net.HardwareAddr, string) {
	if len(s) != 17 {
		return nil, "want six colon-separated hex pairs"
	}
	mac := make(net.HardwareAddr, 6)
	for i := 0; i < 6; i++ {
		p := s[i*3:]
		if i < 5 && p[2] != ':' {
			return nil, "want six colon-separated hex pairs"
		}
		b, err := strconv.ParseUint(p[:2], 16, 8)
		if err != nil {
			return nil, "want six colon-separated hex pairs"
		}
		mac[i] = byte(b)
	}
	if mac[0]&0x01 != 0 {
		return nil, "a multicast address cannot be an interface's address"
	}
	zero := true
	for _, b := range mac {
		if b != 0 {
			zero = false
		}
	}
	if zero {
		return nil, "the all-zero address cannot be an interface's address"
	}
	return mac, ""
}
