package wal

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzStoredEncodings feeds arbitrary bytes, as a damaged disk could hand
// them back, to every decoder of what the WAL stores: frame headers, stored
// entries, index values, checkpoints, stream metadata and positions. None
// may panic, and whatever one accepts must encode again to something that
// decodes to the same value.
func FuzzStoredEncodings(f *testing.F) {
	e := testEntry(7, 300, 3)
	e.JSON, e.Magic, e.Codec, e.ReceivedAt = true, 2, 4, 1_700_000_000_000_000_000
	body := appendEntry(nil, e, 42, 1000, 10, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(appendFrame(nil, 3, 9, func(b []byte) []byte { return append(b, body...) }))
	f.Add(body)
	f.Add(dataPtr{file: 2, pos: 4096, n: 400}.encode())
	f.Add(dataPos{file: 2, pos: 4496}.encode())
	f.Add(streamMeta{Next: 5, Seg: 1, SegBytes: 10, HasSeg: true, CumBytes: 99, CumEntries: 4}.encode())
	f.Add(position{Offset: 5, CumBytes: 99, CumEntries: 4}.encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := decodeFrameHeader(b); err == nil {
			again := make([]byte, frameHeaderLen)
			putFrameHeader(again, h)
			if h2, err := decodeFrameHeader(again); err != nil || h2 != h {
				t.Fatalf("frame header %+v encodes to %+v, %v", h, h2, err)
			}
		}
		if se, err := decodeEntry(b); err == nil {
			again := appendEntry(nil, &se.Entry, se.Entry.BaseOffset, se.CumBytes, se.CumEntries, se.CredHash)
			se2, err := decodeEntry(again)
			if err != nil || !reflect.DeepEqual(se, se2) {
				t.Fatalf("entry %+v encodes to %+v, %v", se, se2, err)
			}
		}
		if p, err := decodeDataPtr(b); err == nil && !bytes.Equal(p.encode(), b) {
			t.Fatalf("index value %+v encodes to %x, from %x", p, p.encode(), b)
		}
		if p, err := decodeDataPos(b); err == nil && !bytes.Equal(p.encode(), b) {
			t.Fatalf("checkpoint %+v encodes to %x, from %x", p, p.encode(), b)
		}
		if m, err := decodeMeta(b); err == nil {
			if m2, err := decodeMeta(m.encode()); err != nil || m2 != m {
				t.Fatalf("meta %+v encodes to %+v, %v", m, m2, err)
			}
		}
		if p, err := decodePosition(b); err == nil && !bytes.Equal(p.encode(), b) {
			t.Fatalf("position %+v encodes to %x, from %x", p, p.encode(), b)
		}
	})
}
