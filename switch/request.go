//go:build linux

package vswitch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/umlutils/umlutils/internal/mmsg"
)

// Magic opens every request since protocol 1 (SWITCH_MAGIC in the C
// switch's uml_switch.h).
const Magic = 0xfeedface

// ReqNewControl is the only request type a UML sends: "here is my data
// socket, make me a port" (REQ_NEW_CONTROL = 0).
const ReqNewControl = 0

// Request sizes on the wire (x86 UML kernels; host byte order).
// The address in each is a struct sockaddr_un, mmsg.SizeofSockaddrUnix
// (110) bytes: u16 family, 108 bytes of path.
const (
	// requestV3Len is u32 magic, u32 version, u32 type, sockaddr_un; the
	// kernel writes 124 bytes (2 bytes of tail padding).
	requestV3Len = 12 + mmsg.SizeofSockaddrUnix
	// requestV1Len is u32 magic, u32 type, u8 mac[6], sockaddr_un.
	requestV1Len = 8 + 6 + mmsg.SizeofSockaddrUnix
	// requestV0Len is u32 type, u8 mac[6], sockaddr_un.
	requestV0Len = 4 + 6 + mmsg.SizeofSockaddrUnix
	// MaxRequestLen is the longest request any version sends, padding
	// included: anything longer on a fresh control connection is garbage.
	MaxRequestLen = 124
)

// Errors of the request parser. They cost only the connection that sent
// them.
var (
	// ErrShortRequest: the connection closed or stalled before a whole
	// request arrived.
	ErrShortRequest = fmt.Errorf("short request: %w", io.ErrUnexpectedEOF)
	// ErrOversizeRequest: more bytes than any request version has.
	ErrOversizeRequest = errors.New("oversize request")
	// ErrBadAddress: the data socket address is not AF_UNIX.
	ErrBadAddress = errors.New("request's data socket address is not AF_UNIX")
)

// UnsupportedVersionError is a request with a known magic and a version
// this switch does not speak. Version 2 is refused as the C switch refuses it.
type UnsupportedVersionError struct{ Version uint32 }

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("request for a version %d port, which this switch does not support", e.Version)
}

// BadTypeError is a request whose type is not REQ_NEW_CONTROL. Without the
// magic, the first word is read as a protocol 0 type, so random bytes land
// here (the C switch prints "Bad request type : N").
type BadTypeError struct{ Type uint32 }

func (e *BadTypeError) Error() string { return fmt.Sprintf("bad request type %d", e.Type) }

// Request is a UML's "new port" request on the control socket: magic
// 0xfeedface, version, type 0 (new control) and the guest's data socket
// as a struct sockaddr_un (docs/protocols.md §1).
type Request struct {
	// Version is 3, 1 or 0 (0: no magic; 1: any version word below 2,
	// which protocol 1 puts where later versions put the version).
	Version uint32
	// MAC is the guest's address as sent by protocols 0 and 1 (zero for 3).
	MAC [6]byte
	// Sock is the UML's data socket as the raw 110-byte sockaddr_un it
	// sent. Abstract names are binary: compare and reply byte for byte.
	Sock [mmsg.SizeofSockaddrUnix]byte
}

// requestNeed reports how many bytes the request starting with p needs in total,
// so a reader knows when to stop reading; 0 means p already proves an
// error (which UnmarshalBinary then returns).
func requestNeed(p []byte) int {
	if len(p) < 8 {
		return 8
	}
	le := binary.LittleEndian
	if le.Uint32(p) != Magic {
		if le.Uint32(p) != ReqNewControl {
			return 0
		}
		return requestV0Len
	}
	switch v := le.Uint32(p[4:]); {
	case v < 2:
		return requestV1Len
	case v == 3:
		return requestV3Len
	default:
		return 0
	}
}

// UnmarshalBinary parses one request. Trailing padding up to MaxRequestLen
// is accepted (a v3 kernel writes 124 bytes for 122 of fields).
func (r *Request) UnmarshalBinary(p []byte) error {
	if len(p) > MaxRequestLen {
		return ErrOversizeRequest
	}
	if len(p) < 4 {
		return ErrShortRequest
	}
	le := binary.LittleEndian
	var sock []byte
	*r = Request{}
	if le.Uint32(p) != Magic {
		// Protocol 0: u32 type, mac, sockaddr_un.
		if t := le.Uint32(p); t != ReqNewControl {
			return &BadTypeError{Type: t}
		}
		if len(p) < requestV0Len {
			return ErrShortRequest
		}
		copy(r.MAC[:], p[4:10])
		sock = p[10:requestV0Len]
	} else {
		if len(p) < 8 {
			return ErrShortRequest
		}
		switch v := le.Uint32(p[4:]); {
		case v < 2:
			// Protocol 1: the word after the magic is the type.
			if v != ReqNewControl {
				return &BadTypeError{Type: v}
			}
			if len(p) < requestV1Len {
				return ErrShortRequest
			}
			r.Version = 1
			copy(r.MAC[:], p[8:14])
			sock = p[14:requestV1Len]
		case v == 3:
			if len(p) < requestV3Len {
				return ErrShortRequest
			}
			if t := le.Uint32(p[8:]); t != ReqNewControl {
				return &BadTypeError{Type: t}
			}
			r.Version = 3
			sock = p[12:requestV3Len]
		default:
			return &UnsupportedVersionError{Version: v}
		}
	}
	if le.Uint16(sock) != 1 { // AF_UNIX
		return ErrBadAddress
	}
	copy(r.Sock[:], sock)
	return nil
}

// MarshalBinary encodes the request as a UML of its version sends it
// (v3 with its 2 bytes of tail padding).
func (r *Request) MarshalBinary() ([]byte, error) {
	le := binary.LittleEndian
	switch r.Version {
	case 3:
		p := make([]byte, MaxRequestLen)
		le.PutUint32(p, Magic)
		le.PutUint32(p[4:], 3)
		le.PutUint32(p[8:], ReqNewControl)
		copy(p[12:], r.Sock[:])
		return p, nil
	case 1:
		p := make([]byte, requestV1Len)
		le.PutUint32(p, Magic)
		le.PutUint32(p[4:], ReqNewControl)
		copy(p[8:], r.MAC[:])
		copy(p[14:], r.Sock[:])
		return p, nil
	case 0:
		p := make([]byte, requestV0Len)
		le.PutUint32(p, ReqNewControl)
		copy(p[4:], r.MAC[:])
		copy(p[10:], r.Sock[:])
		return p, nil
	}
	return nil, &UnsupportedVersionError{Version: r.Version}
}

// sockKey is how a data socket address is compared: an abstract name
// (first path byte NUL) is a fixed binary blob, all bytes count; a path
// name ends at its first NUL, whatever length the sender passed.
func sockKey(raw []byte) []byte {
	if len(raw) <= 2 {
		return raw
	}
	if raw[2] == 0 {
		return raw
	}
	for i := 2; i < len(raw); i++ {
		if raw[i] == 0 {
			return raw[:i]
		}
	}
	return raw
}
