package engine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestHeader is the Kafka request header (v0 to v2) of one frame.
type requestHeader struct {
	key      int16
	version  int16
	corrID   int32
	clientID string
}

var errShortHeader = errors.New("frame shorter than a request header")

// parseRequestHeader splits a frame (without its size prefix) into header
// and body. It does not know whether the body's version is one we serve:
// the caller checks that before parsing the body. A client id equal to
// prev is returned as prev, not a new string: a connection's requests
// repeat theirs.
func parseRequestHeader(frame []byte, prev string) (requestHeader, []byte, error) {
	var h requestHeader
	if len(frame) < 10 {
		return h, nil, errShortHeader
	}
	h.key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.corrID = int32(binary.BigEndian.Uint32(frame[4:]))
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	if n > 0 { // -1 is a null client id
		if int(n) > len(rest) {
			return h, nil, fmt.Errorf("client id length %d exceeds the %d bytes left", n, len(rest))
		}
		if h.clientID = prev; string(rest[:n]) != prev {
			h.clientID = string(rest[:n])
		}
		rest = rest[n:]
	}
	return h, rest, nil
}

// skipTags skips a flexible header's tagged fields section (KIP-482).
func skipTags(b []byte) ([]byte, error) {
	n, sz := binary.Uvarint(b)
	if sz <= 0 {
		return nil, errors.New("bad tagged field count")
	}
	b = b[sz:]
	for i := uint64(0); i < n; i++ {
		if _, sz = binary.Uvarint(b); sz <= 0 { // tag
			return nil, errors.New("bad tag")
		}
		b = b[sz:]
		l, sz := binary.Uvarint(b)
		if sz <= 0 || l > uint64(len(b)-sz) {
			return nil, errors.New("bad tagged field length")
		}
		b = b[sz+int(l):]
	}
	return b, nil
}

// appendResponse frames resp for correlation id corrID: size, correlation
// id, the flexible header's empty tag section (never for ApiVersions, whose
// response header stays v0 so any client can read it), then the body.
func appendResponse(dst []byte, corrID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corrID))
	if resp.IsFlexible() && resp.Key() != 18 {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
