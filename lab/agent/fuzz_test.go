package agent

import (
	"bytes"
	"testing"
)

// The frame reader takes whatever a serial line carries: it must never
// panic, and a frame it returns must marshal back to the bytes it read.
func FuzzReader(f *testing.F) {
	a, _ := (&Frame{Type: Exec, Payload: []byte(`{"argv":["ls"]}`)}).MarshalBinary()
	f.Add(a)
	f.Add([]byte("UMLAR\x00\x00\x00\x08nonce123UMLA"))
	f.Add([]byte("UMLAX\xff\xff\xff\xffUMLAi\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b))
		for i := 0; i < 100; i++ {
			fr, err := r.Next()
			if err != nil {
				return
			}
			out, err := fr.MarshalBinary()
			if err != nil || !bytes.Contains(b, out) {
				t.Fatalf("frame %c %q does not come from the input (%v)", fr.Type, fr.Payload, err)
			}
		}
	})
}

func FuzzConfig(f *testing.F) {
	good, _ := MarshalConfig(&Config{Version: ConfigVersion, Machine: "r1", Root: "/dev/ubda"})
	f.Add(good)
	f.Add([]byte(`{"version":1,"machine":"x","channels":[60]}`))
	f.Add([]byte("{\x00garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := UnmarshalConfig(b)
		if err == nil && (c.Machine == "" || c.Version != ConfigVersion) {
			t.Fatalf("accepted %+v", c)
		}
	})
}
