package vswitch

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The table against a plain model under random learning, moves, expiry
// and port removal: same contents, same owners, bound kept, LRU eviction.
func TestMACTableModel(t *testing.T) {
	const max = 64
	tab := newMACTable(max)
	ports := []*Port{{ID: 1, macHead: nilEnt}, {ID: 2, macHead: nilEnt}, {ID: 3, macHead: nilEnt}}
	type ent struct {
		port *Port
		seen int64
	}
	model := map[[6]byte]ent{}
	r := rand.New(rand.NewPCG(1, 2))
	now := int64(0)
	for step := 0; step < 200000; step++ {
		now += 1 + int64(r.IntN(3)) // distinct times: the model breaks no ties
		mac := [6]byte{2, 0, 0, 0, 0, byte(r.IntN(100))}
		p := ports[r.IntN(len(ports))]
		switch op := r.IntN(100); {
		case op < 90: // a frame from mac on p
			if i := tab.lookup(mac); i != nilEnt {
				if tab.ents[i].port != p {
					tab.move(i, p)
				}
				tab.touch(i, now)
			} else {
				if len(model) >= max {
					// the model's least recently seen goes
					var old [6]byte
					first := true
					for m, e := range model {
						if first || e.seen < model[old].seen {
							old, first = m, false
						}
					}
					delete(model, old)
				}
				tab.insert(mac, p, now)
			}
			model[mac] = ent{p, now}
		case op < 95:
			tab.expire(now, 50, 1<<30)
			for m, e := range model {
				if now-e.seen > 50 {
					delete(model, m)
				}
			}
		default:
			tab.removePort(p)
			for m, e := range model {
				if e.port == p {
					delete(model, m)
				}
			}
		}
		if step%997 == 0 || tab.len() != len(model) {
			if tab.len() != len(model) {
				t.Fatalf("step %d: table %d entries, model %d", step, tab.len(), len(model))
			}
			counts := map[*Port]int{}
			for m, e := range model {
				i := tab.lookup(m)
				if i == nilEnt || tab.ents[i].port != e.port || tab.ents[i].seen != e.seen {
					t.Fatalf("step %d: %x: table %v, model %v", step, m, i, e)
				}
				counts[e.port]++
			}
			for _, p := range ports {
				if p.macs != counts[p] {
					t.Fatalf("step %d: port %d counts %d, model %d", step, p.ID, p.macs, counts[p])
				}
			}
		}
	}
}

// perFrame returns the mean time ingress takes per frame for frames built
// by mk, after warming the table up.
func perFrame(sw *Switch, in *Port, n int, mk func(i int) []byte) time.Duration {
	tx := newTxContext(64)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		sw.ingress(tx, in, mk(i), sw.now())
		sw.transmit(tx)
	}
	return time.Since(t0) / time.Duration(n)
}

// A MAC flood costs O(1) per frame: fresh sources at a full table (each
// one evicting) cost about what known sources cost, not a scan of the
// 65536 entries (the old table scanned it for every fresh source).
func TestMACFloodConstantCost(t *testing.T) {
	sw := New(Config{})
	tr := &countingTransport{}
	ps := make([]*Port, 3)
	for i := range ps {
		ps[i] = &Port{ID: i + 5, Transport: "bench", tr: tr}
		if err := sw.addPort(ps[i]); err != nil {
			t.Fatal(err)
		}
	}
	frame := func(src uint32, dst [6]byte) []byte {
		f := make([]byte, 60)
		copy(f, dst[:])
		f[6], f[7], f[8], f[9], f[10], f[11] = 2, 0xf1, byte(src>>24), byte(src>>16), byte(src>>8), byte(src)
		return f
	}
	const n = 200000
	fresh := make([][]byte, 0, 2*n)
	for i := 0; i < cap(fresh); i++ {
		fresh = append(fresh, frame(uint32(i), [6]byte{2, 0xee, byte(i >> 16), byte(i >> 8), byte(i), 1}))
	}
	// Fill the table (65536) and then some: every later frame evicts.
	perFrame(sw, ps[0], n, func(i int) []byte { return fresh[i] })
	if sw.macs.len() != DefaultMACTableSize {
		t.Fatalf("table holds %d", sw.macs.len())
	}
	known := frame(7, [6]byte{2, 0xf1, 0, 0, 0, 8})
	sw.ingress(newTxContext(8), ps[1], frame(8, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), sw.now())
	var flood, steady time.Duration
	for round := 0; round < 3; round++ {
		f := perFrame(sw, ps[0], n/2, func(i int) []byte { return fresh[n+round*n/4+i%(n/4)] })
		s := perFrame(sw, ps[2], n/2, func(int) []byte { return known })
		if round == 0 || f < flood {
			flood = f
		}
		if round == 0 || s < steady {
			steady = s
		}
	}
	t.Logf("per frame: %v flooding a full table, %v between known addresses; %d evictions", flood, steady, sw.macs.evictions)
	if sw.macs.evictions == 0 {
		t.Fatal("no evictions counted")
	}
	// Flood frames go to every port and allocate events; a scan of the
	// table would cost tens of microseconds.
	if flood > 20*steady+2*time.Microsecond {
		t.Errorf("a flood frame costs %v, a known one %v", flood, steady)
	}
}

// groupByPort groups by port and keeps each port's order.
func TestGroupByPort(t *testing.T) {
	ps := []*Port{{ID: 7}, {ID: 5}, {ID: 6}}
	var items []txItem
	for i := 0; i < 30; i++ {
		items = append(items, txItem{p: ps[i%3], frame: []byte{byte(i)}})
	}
	groupByPort(items)
	last := map[int]int{}
	for i, it := range items {
		if i > 0 && it.p.ID < items[i-1].p.ID {
			t.Fatalf("not grouped at %d", i)
		}
		if v, ok := last[it.p.ID]; ok && int(it.frame[0]) < v {
			t.Fatalf("port %d's order changed", it.p.ID)
		}
		last[it.p.ID] = int(it.frame[0])
	}
}
