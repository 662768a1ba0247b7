package swload

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/umlutils/umlutils/internal/mmsg"
)

// Ethertypes of the generator's frames (IEEE local experimental values), so
// a receiver tells measured traffic from the learning floods.
const (
	typeLearn   = 0x88b5
	typeTraffic = 0x88b6
)

// MAC returns the synthetic address of port i's j-th host: locally
// administered unicast.
func MAC(i, j int) [6]byte {
	return [6]byte{0x02, 0x5e, byte(i >> 8), byte(i), byte(j >> 8), byte(j)}
}

// Frame builds a frame of size bytes (at least 14) from src to dst.
func Frame(dst, src [6]byte, typ uint16, size int) []byte {
	if size < 14 {
		size = 14
	}
	f := make([]byte, size)
	copy(f, dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], typ)
	return f
}

// Ports registers n synthetic ports on the switch at ctl.
func Ports(ctl string, n int) ([]*Client, error) {
	cs := make([]*Client, 0, n)
	for i := 0; i < n; i++ {
		c, err := Dial(ctl, 3, "")
		if err != nil {
			for _, c := range cs {
				c.Close()
			}
			return nil, fmt.Errorf("port %d: %w", i, err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// Learn makes the switch learn hosts MACs behind each client: every host
// sends one broadcast. Receivers must be draining.
func Learn(cs []*Client, hosts int) error {
	for j := 0; j < hosts; j++ {
		for i, c := range cs {
			if err := c.SendTo(Frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, MAC(i, j), typeLearn, 60)); err != nil {
				return err
			}
		}
		// Give the switch and the floods time: queues hold 10 frames.
		time.Sleep(200 * time.Microsecond)
	}
	time.Sleep(200 * time.Millisecond)
	return nil
}

// ThroughputResult is what one throughput run measured.
type ThroughputResult struct {
	Sent, Received uint64
	Duration       time.Duration
}

// FramesPerSec is delivered frames per second.
func (r ThroughputResult) FramesPerSec() float64 {
	return float64(r.Received) / r.Duration.Seconds()
}

// Throughput registers ports ports with hosts MACs each on the switch at
// ctl, lets it learn them all, then has every port send size-byte unicast
// frames to the next port's hosts for d, and counts what arrives.
func Throughput(ctl string, ports, hosts, size int, d time.Duration) (ThroughputResult, error) {
	cs, err := Ports(ctl, ports)
	if err != nil {
		return ThroughputResult{}, err
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	var received atomic.Uint64
	var counting atomic.Bool
	stop := make(chan struct{})
	drained := make(chan error, 1)
	go func() {
		drained <- Drain(cs, stop, func(_ int, b *mmsg.RecvBatch) {
			if !counting.Load() {
				return
			}
			k := 0
			for i := 0; i < b.Len(); i++ {
				f := b.Frame(i)
				if len(f) >= 14 && binary.BigEndian.Uint16(f[12:]) == typeTraffic {
					k++
				}
			}
			received.Add(uint64(k))
		})
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	if err := Learn(cs, hosts); err != nil {
		return ThroughputResult{}, err
	}
	// One sending thread takes the ports in turn, a burst each, with
	// blocking sends: only one sender ever waits for room in the switch's
	// queue, so the generator spends its time sending, not waking a herd
	// of blocked senders.
	const burst = 32
	type source struct {
		c      *Client
		frames [][]byte
		next   int
		b      *mmsg.SendBatch
	}
	srcs := make([]*source, len(cs))
	for i, c := range cs {
		peer := (i + 1) % len(cs)
		if len(cs)%2 == 0 {
			peer = i ^ 1
		}
		s := &source{c: c, b: mmsg.NewSendBatch(burst)}
		for j := 0; j < hosts; j++ {
			s.frames = append(s.frames, Frame(MAC(peer, j), MAC(i, j), typeTraffic, size))
		}
		srcs[i] = s
	}
	var sent uint64
	counting.Store(true)
	start := time.Now()
	deadline := start.Add(d)
	var sendErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for round := 0; ; round++ {
			if round%4 == 0 && !time.Now().Before(deadline) {
				return
			}
			for _, s := range srcs {
				for k := 0; k < burst; k++ {
					s.b.Add(s.c.Switch, s.frames[s.next])
					s.next = (s.next + 1) % len(s.frames)
				}
				if err := s.c.Send(s.b); err != nil {
					sendErr = err
					return
				}
				sent += burst
			}
		}
	}()
	<-done
	if sendErr != nil {
		return ThroughputResult{}, sendErr
	}
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond) // let queued frames arrive
	counting.Store(false)
	close(stop)
	if err := <-drained; err != nil {
		return ThroughputResult{}, err
	}
	return ThroughputResult{Sent: sent, Received: received.Load(), Duration: elapsed}, nil
}

// LatencyResult is the round-trip time distribution of one run.
type LatencyResult struct {
	Samples   int
	Lost      int
	P50, P99  time.Duration
	Mean, Max time.Duration
}

// Latency measures round trips of size-byte frames between two ports: A
// sends to B, B echoes to A, one frame in flight at a time, for d.
func Latency(ctl string, size int, d time.Duration) (LatencyResult, error) {
	cs, err := Ports(ctl, 2)
	if err != nil {
		return LatencyResult{}, err
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	return PingPong(cs[0], cs[1], 0, size, d)
}

// PingPong measures round trips between two registered clients: a sends
// a frame to b's host, b echoes it, one frame in flight at a time, for d.
// Hosts are MAC(id, 0) and MAC(id+1, 0), so several pairs can run on one
// switch with distinct ids. A round trip that takes over 200 ms is lost.
func PingPong(a, b *Client, id, size int, d time.Duration) (LatencyResult, error) {
	if size < 18 {
		size = 18
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ma, mb := MAC(id, 0), MAC(id+1, 0)
	wg.Add(1)
	go func() { // the echoing peer
		defer wg.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		rb := mmsg.NewRecvBatch(16, 2048)
		echo := Frame(ma, mb, typeTraffic, size)
		for {
			n, err := b.Recv(rb)
			select {
			case <-stop:
				return
			default:
			}
			if err != nil {
				continue
			}
			for i := 0; i < n; i++ {
				f := rb.Frame(i)
				if len(f) >= 18 && binary.BigEndian.Uint16(f[12:]) == typeTraffic && [6]byte(f[6:12]) == ma {
					copy(echo[14:18], f[14:18])
					_ = b.SendTo(echo)
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	// Learn both MACs.
	_ = a.SendTo(Frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ma, typeLearn, 60))
	_ = b.SendTo(Frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mb, typeLearn, 60))
	time.Sleep(100 * time.Millisecond)
	rb := mmsg.NewRecvBatch(16, 2048)
	// Drain the learning floods.
	for {
		if n, err := rb.Recv(a.FD, 0, unix.MSG_DONTWAIT); err != nil || n == 0 {
			break
		}
	}
	ping := Frame(mb, ma, typeTraffic, size)
	var rtts []time.Duration
	lost := 0
	end := time.Now().Add(d)
	for seq := uint32(1); time.Now().Before(end); seq++ {
		binary.BigEndian.PutUint32(ping[14:], seq)
		t0 := time.Now()
		if err := a.SendTo(ping); err != nil {
			return LatencyResult{}, err
		}
		got := false
		for !got && time.Since(t0) < 200*time.Millisecond {
			n, err := a.Recv(rb)
			if err != nil {
				continue
			}
			for i := 0; i < n; i++ {
				f := rb.Frame(i)
				if len(f) >= 18 && binary.BigEndian.Uint16(f[12:]) == typeTraffic && [6]byte(f[6:12]) == mb && binary.BigEndian.Uint32(f[14:]) == seq {
					got = true
				}
			}
		}
		if !got {
			lost++
			continue
		}
		rtts = append(rtts, time.Since(t0))
	}
	if len(rtts) == 0 {
		return LatencyResult{Lost: lost}, fmt.Errorf("no round trip completed")
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	var sum time.Duration
	for _, r := range rtts {
		sum += r
	}
	return LatencyResult{
		Samples: len(rtts), Lost: lost,
		P50:  rtts[len(rtts)/2],
		P99:  rtts[len(rtts)*99/100],
		Mean: sum / time.Duration(len(rtts)),
		Max:  rtts[len(rtts)-1],
	}, nil
}

// Flood sends size-byte frames from c as fast as its socket takes them,
// each with a fresh random source and a random unknown unicast destination
// (what macof does), until stop is closed, and returns how many it sent.
// Sends block while the switch's queue is full, as a guest's would.
func Flood(c *Client, size int, stop <-chan struct{}) uint64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r [8]byte
	f := Frame([6]byte{}, [6]byte{}, typeTraffic, size)
	seed := uint64(time.Now().UnixNano())
	var sent uint64
	for {
		select {
		case <-stop:
			return sent
		default:
		}
		for k := 0; k < 64; k++ {
			// xorshift: cheap fresh addresses, unicast, locally administered.
			seed ^= seed << 13
			seed ^= seed >> 7
			seed ^= seed << 17
			binary.LittleEndian.PutUint64(r[:], seed)
			copy(f[0:6], r[:6])
			f[0] = f[0]&^1 | 2
			copy(f[6:12], r[2:8])
			f[6] = f[6]&^1 | 2
			if c.SendTo(f) == nil {
				sent++
			}
		}
	}
}
