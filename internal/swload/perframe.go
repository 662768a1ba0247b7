package swload

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/umlutils/umlutils/internal/mmsg"
)

// PerFrameConfig is a run of the UML-like generator: every port has its
// own thread that sends one frame per sendto on its own socket, which is
// not connected to the switch (a UML never connects its data socket, so
// the kernel bounds its receive queue by net.unix.max_dgram_qlen), and its
// own thread that receives, as a guest's interrupt handler does.
type PerFrameConfig struct {
	Ports, Hosts, Size int
	Duration           time.Duration
	// NonBlocking sends with MSG_DONTWAIT and counts EAGAIN as a lost
	// frame, as a guest does when the switch's queue is full.
	NonBlocking bool
	// PID, if positive, is the switch process whose CPU time is read
	// from /proc/PID/stat around the measuring window.
	PID int
}

// PerFrameResult adds to ThroughputResult what the UML-like run measures.
type PerFrameResult struct {
	ThroughputResult
	// EAGAIN counts non-blocking sends refused because the queue was full.
	EAGAIN uint64
	// CPU is the switch's user+system time during the window (0 unless
	// PID was given).
	CPU time.Duration
}

// Lost is frames sent (or refused) that never arrived.
func (r PerFrameResult) Lost() uint64 {
	if r.Sent+r.EAGAIN < r.Received {
		return 0
	}
	return r.Sent + r.EAGAIN - r.Received
}

// CPUPerFrame is the switch's CPU time per delivered frame.
func (r PerFrameResult) CPUPerFrame() time.Duration {
	if r.Received == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Received)
}

// ProcCPU reads a process's user+system CPU time from /proc/PID/stat
// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the command: state is field 3, utime 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	const tick = 10 * time.Millisecond // sysconf(_SC_CLK_TCK) = 100
	return time.Duration(ut+st) * tick, nil
}

// PerFrame registers cfg.Ports ports on the switch at ctl and runs the
// UML-like generator against it: port i sends to port i's partner's hosts
// (i^1, or i+1 for an odd count), one frame per sendto.
func PerFrame(ctl string, cfg PerFrameConfig) (PerFrameResult, error) {
	cs, err := Ports(ctl, cfg.Ports)
	if err != nil {
		return PerFrameResult{}, err
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for _, c := range cs {
		if err := c.Unconnect(); err != nil {
			return PerFrameResult{}, err
		}
	}
	dst := make([][]byte, len(cs))
	for i, c := range cs {
		dst[i] = c.Switch
	}
	return perFrameRun(cs, dst, cfg, true)
}

// Direct is the one-hop ceiling: the same generator with no switch, each
// port sending straight to its partner's socket.
func Direct(cfg PerFrameConfig) (PerFrameResult, error) {
	cs := make([]*Client, 0, cfg.Ports)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for i := 0; i < cfg.Ports; i++ {
		c, err := bindClient()
		if err != nil {
			return PerFrameResult{}, err
		}
		cs = append(cs, c)
	}
	dst := make([][]byte, len(cs))
	for i := range cs {
		dst[i] = cs[partner(i, len(cs))].Name[:]
	}
	cfg.PID = 0
	return perFrameRun(cs, dst, cfg, false)
}

func partner(i, n int) int {
	if n%2 == 0 {
		return i ^ 1
	}
	return (i + 1) % n
}

// bindClient makes a client with a bound data socket and no switch.
func bindClient() (*Client, error) {
	c := &Client{FD: -1}
	binary.LittleEndian.PutUint16(c.Name[:], unix.AF_UNIX)
	copy(c.Name[3:], "swload.")
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	copy(c.Name[10:], r[:])
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c.FD = fd
	if err := mmsg.Bind(fd, c.Name[:]); err != nil {
		c.Close()
		return nil, err
	}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: 1})
	return c, nil
}

// perFrameRun runs the senders and receivers. learn says whether the
// hosts must first be taught to a switch.
func perFrameRun(cs []*Client, dst [][]byte, cfg PerFrameConfig, learn bool) (PerFrameResult, error) {
	if cfg.Hosts < 1 {
		cfg.Hosts = 1
	}
	var received atomic.Uint64
	var counting atomic.Bool
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	for _, c := range cs {
		rwg.Add(1)
		go func(c *Client) {
			defer rwg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b := mmsg.NewRecvBatch(16, 2048)
			for {
				select {
				case <-stop:
					return
				default:
				}
				n, err := c.Recv(b)
				if err != nil || !counting.Load() {
					continue
				}
				k := 0
				for i := 0; i < n; i++ {
					f := b.Frame(i)
					if len(f) >= 14 && binary.BigEndian.Uint16(f[12:]) == typeTraffic {
						k++
					}
				}
				received.Add(uint64(k))
			}
		}(c)
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		rwg.Wait()
	}()
	if learn {
		if err := Learn(cs, cfg.Hosts); err != nil {
			return PerFrameResult{}, err
		}
	}
	var sent, eagain atomic.Uint64
	var sendErr atomic.Value
	counting.Store(true)
	var cpu0 time.Duration
	if cfg.PID > 0 {
		var err error
		if cpu0, err = ProcCPU(cfg.PID); err != nil {
			return PerFrameResult{}, err
		}
	}
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var swg sync.WaitGroup
	for i, c := range cs {
		swg.Add(1)
		go func(i int, c *Client) {
			defer swg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			p := partner(i, len(cs))
			frames := make([][]byte, cfg.Hosts)
			for j := range frames {
				frames[j] = Frame(MAC(p, j), MAC(i, j), typeTraffic, cfg.Size)
			}
			flags := 0
			if cfg.NonBlocking {
				flags = unix.MSG_DONTWAIT
			}
			var n, again uint64
			for k := 0; ; k++ {
				if k%64 == 0 && !time.Now().Before(deadline) {
					break
				}
				err := mmsg.SendTo(c.FD, frames[k%len(frames)], flags, dst[i])
				switch err {
				case nil:
					n++
				case unix.EAGAIN:
					again++
				case unix.EINTR:
				default:
					sendErr.Store(fmt.Errorf("port %d: %w", i, err))
					return
				}
			}
			sent.Add(n)
			eagain.Add(again)
		}(i, c)
	}
	swg.Wait()
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond) // let queued frames arrive
	counting.Store(false)
	// The switch's CPU time covers the frames still queued at the end,
	// which are counted as received.
	var cpu time.Duration
	if cfg.PID > 0 {
		cpu1, err := ProcCPU(cfg.PID)
		if err != nil {
			return PerFrameResult{}, err
		}
		cpu = cpu1 - cpu0
	}
	if err, ok := sendErr.Load().(error); ok {
		return PerFrameResult{}, err
	}
	return PerFrameResult{
		ThroughputResult: ThroughputResult{Sent: sent.Load(), Received: received.Load(), Duration: elapsed},
		EAGAIN:           eagain.Load(), CPU: cpu,
	}, nil
}
