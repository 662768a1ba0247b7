//go:build linux

package vswitch

// macTable maps learned source addresses to ports with O(1) work per frame
// whatever its state: a hash index into an arena of entries, each on two
// intrusive lists — all entries in least-recently-seen order, and its
// port's entries. Refreshing an entry moves it to the front, so the back is
// always the oldest: eviction at a full table and expiry take entries off
// the back without a scan, and a removed port drops exactly its own
// entries. A frame from a fresh source at a full table evicts the least
// recently seen entry (counted in Stats.MACEvictions); learning never
// stops, as a MAC flood must not pin the table to the flooder's addresses.
//
// The arena holds at most the table's bound of entries and the index as
// many keys, so a flood of fresh addresses costs no memory beyond that.
type macTable struct {
	idx        map[[6]byte]int32
	ents       []macEnt
	free       int32 // head of the free list (linked by next), or nilEnt
	head, tail int32 // most and least recently seen
	max        int
	evictions  uint64
}

const nilEnt = -1

type macEnt struct {
	mac          [6]byte
	port         *Port
	seen         int64 // nanoseconds since the switch started
	prev, next   int32 // recency list (prev: more recent)
	pprev, pnext int32 // the port's list
}

func newMACTable(max int) *macTable {
	return &macTable{idx: make(map[[6]byte]int32), free: nilEnt, head: nilEnt, tail: nilEnt, max: max}
}

func (t *macTable) len() int { return len(t.idx) }

// lookup returns the entry index for mac, or nilEnt.
func (t *macTable) lookup(mac [6]byte) int32 {
	if i, ok := t.idx[mac]; ok {
		return i
	}
	return nilEnt
}

func (t *macTable) unlinkRecency(i int32) {
	e := &t.ents[i]
	if e.prev != nilEnt {
		t.ents[e.prev].next = e.next
	} else {
		t.head = e.next
	}
	if e.next != nilEnt {
		t.ents[e.next].prev = e.prev
	} else {
		t.tail = e.prev
	}
	e.prev, e.next = nilEnt, nilEnt
}

func (t *macTable) pushFront(i int32) {
	e := &t.ents[i]
	e.prev, e.next = nilEnt, t.head
	if t.head != nilEnt {
		t.ents[t.head].prev = i
	}
	t.head = i
	if t.tail == nilEnt {
		t.tail = i
	}
}

// touch marks entry i seen now: it becomes the most recent.
func (t *macTable) touch(i int32, now int64) {
	t.ents[i].seen = now
	if t.head != i {
		t.unlinkRecency(i)
		t.pushFront(i)
	}
}

func (t *macTable) linkPort(i int32, p *Port) {
	e := &t.ents[i]
	e.port = p
	e.pprev, e.pnext = nilEnt, p.macHead
	if p.macHead != nilEnt {
		t.ents[p.macHead].pprev = i
	}
	p.macHead = i
	p.macs++
}

func (t *macTable) unlinkPort(i int32) {
	e := &t.ents[i]
	p := e.port
	if e.pprev != nilEnt {
		t.ents[e.pprev].pnext = e.pnext
	} else {
		p.macHead = e.pnext
	}
	if e.pnext != nilEnt {
		t.ents[e.pnext].pprev = e.pprev
	}
	e.pprev, e.pnext = nilEnt, nilEnt
	e.port = nil
	p.macs--
}

// move hands entry i over to port p.
func (t *macTable) move(i int32, p *Port) {
	t.unlinkPort(i)
	t.linkPort(i, p)
}

// insert learns mac on p, evicting the least recently seen entry if the
// table is full. It returns the new entry's index.
func (t *macTable) insert(mac [6]byte, p *Port, now int64) int32 {
	if len(t.idx) >= t.max && t.tail != nilEnt {
		t.remove(t.tail)
		t.evictions++
	}
	var i int32
	if t.free != nilEnt {
		i = t.free
		t.free = t.ents[i].next
	} else {
		t.ents = append(t.ents, macEnt{})
		i = int32(len(t.ents) - 1)
	}
	t.ents[i] = macEnt{mac: mac, seen: now, prev: nilEnt, next: nilEnt, pprev: nilEnt, pnext: nilEnt}
	t.idx[mac] = i
	t.pushFront(i)
	t.linkPort(i, p)
	return i
}

// remove forgets entry i.
func (t *macTable) remove(i int32) {
	t.unlinkRecency(i)
	t.unlinkPort(i)
	delete(t.idx, t.ents[i].mac)
	t.ents[i].next = t.free
	t.free = i
}

// expire removes up to max entries last seen more than age ago, oldest
// first, and reports whether more may be left. The bound keeps the lock
// hold short when a whole flood's worth of entries ages out at once.
func (t *macTable) expire(now, age int64, max int) bool {
	for n := 0; t.tail != nilEnt && now-t.ents[t.tail].seen > age; n++ {
		if n >= max {
			return true
		}
		t.remove(t.tail)
	}
	return false
}

// removePort forgets every entry on p.
func (t *macTable) removePort(p *Port) {
	for p.macHead != nilEnt {
		t.remove(p.macHead)
	}
}
