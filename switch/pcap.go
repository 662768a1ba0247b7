//go:build linux

package vswitch

import (
	"bufio"
	"io"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// PcapCapture writes frames in the classic pcap format (link type
// Ethernet), readable by tcpdump -r and Wireshark, with gopacket's pure-Go
// writer: no libpcap, no root.
type PcapCapture struct {
	bw *bufio.Writer
	w  *pcapgo.Writer
}

// NewPcapCapture writes the pcap file header to w and returns a capture
// writing to it. Frames are buffered; Flush (the switch calls it after every
// batch) pushes them out, so `-pcap -` streams.
func NewPcapCapture(w io.Writer) (*PcapCapture, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	pw := pcapgo.NewWriter(bw)
	if err := pw.WriteFileHeader(MaxFrame, layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return &PcapCapture{bw: bw, w: pw}, nil
}

// WriteFrame appends one frame.
func (c *PcapCapture) WriteFrame(t time.Time, frame []byte) error {
	return c.w.WritePacket(gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(frame), Length: len(frame)}, frame)
}

// Flush writes buffered frames out.
func (c *PcapCapture) Flush() error { return c.bw.Flush() }
