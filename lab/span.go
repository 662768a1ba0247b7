package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SpanFile declares collision domains that span hosts, in the spirit of
// Kathará's lab.ext. Each line:
//
//	DOMAIN vni=N [port=P] HOST HOST ...
//
// names a domain of lab.conf, its VXLAN network identifier, the UDP port
// (4789 unless given; a distinct one per spanning domain) and the
// addresses of every host that runs part of the lab, this one included.
// The same lab directory, copied to each host and started there with the
// machines that host runs (`umlab start r1 r2`), forms one lab: each
// host's switch for the domain carries it over VXLAN to the others. A
// host finds its own address in the list by binding to it. The guests'
// interfaces on spanning domains get MTU 1450, the largest whose frames
// fit a 1500-byte underlay once VXLAN's 50 bytes are added.
const SpanFile = "lab.vxlan"

// SpanMTU is the MTU of guest interfaces on spanning domains.
const SpanMTU = 1450

// Span is one spanning domain.
type Span struct {
	Domain string
	VNI    int
	Port   int
	Hosts  []string
	Line   int
}

// ParseSpans reads a SpanFile.
func ParseSpans(file string, r io.Reader) ([]Span, error) {
	var out []Span
	seen := map[string]bool{}
	ports := map[int]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		perr := func(format string, a ...any) error {
			return &ParseError{File: file, Line: n, Msg: fmt.Sprintf(format, a...)}
		}
		s := Span{Domain: f[0], Port: 4789, Line: n}
		if msg := checkName(s.Domain); msg != "" {
			return nil, perr("domain %q: %s", s.Domain, msg)
		}
		if seen[s.Domain] {
			return nil, perr("domain %s declared twice", s.Domain)
		}
		seen[s.Domain] = true
		for _, w := range f[1:] {
			k, v, ok := strings.Cut(w, "=")
			switch {
			case ok && k == "vni":
				x, err := strconv.Atoi(v)
				if err != nil || x < 0 || x >= 1<<24 {
					return nil, perr("vni %q: want 0 to 16777215", v)
				}
				s.VNI = x
			case ok && k == "port":
				x, err := strconv.Atoi(v)
				if err != nil || x <= 0 || x > 65535 {
					return nil, perr("port %q: want 1 to 65535", v)
				}
				s.Port = x
			case ok:
				return nil, perr("unknown setting %q (want vni=N, port=P, then host addresses)", w)
			default:
				if net.ParseIP(w) == nil {
					return nil, perr("%q is not an IP address", w)
				}
				s.Hosts = append(s.Hosts, w)
			}
		}
		if !strings.Contains(line, "vni=") {
			return nil, perr("domain %s: no vni=N", s.Domain)
		}
		if len(s.Hosts) < 2 {
			return nil, perr("domain %s: name every host of the lab (at least two addresses)", s.Domain)
		}
		if d, ok := ports[s.Port]; ok {
			return nil, perr("domains %s and %s both use UDP port %d; give each spanning domain its own port=", d, s.Domain, s.Port)
		}
		ports[s.Port] = s.Domain
		out = append(out, s)
	}
	return out, sc.Err()
}

// loadSpans reads the lab's SpanFile, if it has one, and checks its
// domains exist.
func (r *Runner) loadSpans() (map[string]Span, error) {
	f, err := os.Open(filepath.Join(r.Lab.Dir, SpanFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	spans, err := ParseSpans(SpanFile, f)
	if err != nil {
		return nil, err
	}
	out := map[string]Span{}
	for _, s := range spans {
		if r.domain(s.Domain) == nil {
			return nil, fmt.Errorf("%s:%d: %s is not a collision domain of lab.conf", SpanFile, s.Line, s.Domain)
		}
		out[s.Domain] = s
	}
	return out, nil
}

// vxlanArg returns the switch's -vxlan argument for a spanning domain:
// this host's own address among the span's hosts (the one it can bind),
// the others as remotes.
func (s Span) vxlanArg() (string, error) {
	local := ""
	var remotes []string
	for _, h := range s.Hosts {
		hp := net.JoinHostPort(h, strconv.Itoa(s.Port))
		if local == "" {
			if c, err := net.ListenPacket("udp", net.JoinHostPort(h, "0")); err == nil {
				c.Close()
				local = hp
				continue
			}
		}
		remotes = append(remotes, "remote="+hp)
	}
	if local == "" {
		return "", fmt.Errorf("%s:%d: domain %s: none of %s is an address of this host", SpanFile, s.Line, s.Domain, strings.Join(s.Hosts, ", "))
	}
	return fmt.Sprintf("vni=%d,local=%s,%s", s.VNI, local, strings.Join(remotes, ",")), nil
}
