package vswitch

import (
	"fmt"
	"testing"
)

// countingTransport stands in for a peer: it only counts, so the benchmark
// measures the forwarding core (lookup, learning, counters), not syscalls.
type countingTransport struct{ n int }

func (c *countingTransport) send(tx *txContext, p *Port, frame []byte) { c.n++ }
func (c *countingTransport) close() error                              { return nil }

// BenchmarkForward: unicast between learned MACs on 64 ports, 4096 MACs,
// 64-byte frames — the per-frame work of the 64-port bench scenario.
func BenchmarkForward(b *testing.B) {
	for _, ports := range []int{2, 64} {
		b.Run(fmt.Sprintf("ports=%d", ports), func(b *testing.B) {
			sw := New(Config{})
			tr := &countingTransport{}
			ps := make([]*Port, ports)
			for i := range ps {
				ps[i] = &Port{ID: i + 5, Transport: "bench", tr: tr}
				sw.addPort(ps[i])
			}
			hosts := 4096 / ports
			mac := func(i, j int) []byte { return []byte{2, 0, byte(i), byte(i >> 8), byte(j), byte(j >> 8)} }
			frames := make([][]byte, 0, ports*hosts)
			tx := newTxContext(64)
			for i := range ps {
				for j := 0; j < hosts; j++ {
					f := make([]byte, 64)
					copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
					copy(f[6:], mac(i, j))
					sw.ingress(tx, ps[i], f, sw.now()) // learn
					sw.transmit(tx)
					g := make([]byte, 64)
					copy(g, mac((i^1)%ports, j))
					copy(g[6:], mac(i, j))
					frames = append(frames, g)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			now := sw.now()
			for n := 0; n < b.N; n++ {
				k := n % len(frames)
				sw.ingress(tx, ps[k/hosts], frames[k], now)
				sw.transmit(tx)
			}
		})
	}
}
