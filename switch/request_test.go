package vswitch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/umlutils/umlutils/internal/mmsg"
)

func sockaddr(name string) [mmsg.SizeofSockaddrUnix]byte {
	var s [mmsg.SizeofSockaddrUnix]byte
	binary.LittleEndian.PutUint16(s[:], 1)
	copy(s[2:], name)
	return s
}

func TestRequestRoundTrip(t *testing.T) {
	for _, v := range []uint32{0, 1, 3} {
		in := Request{Version: v, Sock: sockaddr("\x00abc\x00def")}
		if v != 3 {
			in.MAC = [6]byte{2, 0, 0, 0, 0, 9}
		}
		b, err := in.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var out Request
		if err := out.UnmarshalBinary(b); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if out != in {
			t.Fatalf("v%d: got %+v want %+v", v, out, in)
		}
		if n := requestNeed(b); n > len(b) || n == 0 {
			t.Fatalf("v%d: requestNeed says %d for %d bytes", v, n, len(b))
		}
	}
}

func TestRequestErrors(t *testing.T) {
	v3 := func(version uint32) []byte {
		b := make([]byte, 124)
		binary.LittleEndian.PutUint32(b, Magic)
		binary.LittleEndian.PutUint32(b[4:], version)
		binary.LittleEndian.PutUint16(b[12:], 1)
		return b
	}
	var uv *UnsupportedVersionError
	var bt *BadTypeError
	cases := []struct {
		name string
		in   []byte
		ok   func(error) bool
	}{
		{"empty", nil, func(e error) bool { return errors.Is(e, ErrShortRequest) }},
		{"short v3", v3(3)[:100], func(e error) bool { return errors.Is(e, ErrShortRequest) }},
		{"version 2", v3(2), func(e error) bool { return errors.As(e, &uv) && uv.Version == 2 }},
		{"version 9", v3(9), func(e error) bool { return errors.As(e, &uv) && uv.Version == 9 }},
		{"oversize", make([]byte, 200), func(e error) bool { return errors.Is(e, ErrOversizeRequest) }},
		{"garbage", []byte("garbage!garbage!"), func(e error) bool { return errors.As(e, &bt) }},
		{"not AF_UNIX", func() []byte { b := v3(3); b[12] = 2; return b }(), func(e error) bool { return errors.Is(e, ErrBadAddress) }},
	}
	for _, c := range cases {
		var r Request
		if err := r.UnmarshalBinary(c.in); !c.ok(err) {
			t.Errorf("%s: unexpected error %v", c.name, err)
		}
	}
}

func TestSockKey(t *testing.T) {
	abs := sockaddr("\x00ab\x00cd")
	if got := sockKey(abs[:]); !bytes.Equal(got, abs[:]) {
		t.Errorf("abstract key cut: %q", got)
	}
	path := sockaddr("/tmp/x")
	short := path[:2+len("/tmp/x")+1]
	if !bytes.Equal(sockKey(path[:]), sockKey(short)) {
		t.Errorf("path keys differ by length: %q vs %q", sockKey(path[:]), sockKey(short))
	}
}

// FuzzRequest: any bytes give a request or an error, never a panic; what
// parses re-encodes to something that parses to the same request.
func FuzzRequest(f *testing.F) {
	for _, v := range []uint32{0, 1, 3} {
		r := Request{Version: v, Sock: sockaddr("\x00uml")}
		b, _ := r.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_ = requestNeed(in)
		var r Request
		if err := r.UnmarshalBinary(in); err != nil {
			return
		}
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed %+v but cannot encode it: %v", r, err)
		}
		var r2 Request
		if err := r2.UnmarshalBinary(b); err != nil || r2 != r {
			t.Fatalf("re-encoded request differs: %+v vs %+v (%v)", r2, r, err)
		}
	})
}
