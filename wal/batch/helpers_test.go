package batch

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// Test fixtures are real encodings built by batchtest. What is special to
// this package stays here: the records most tests use, Kafka 0.8/0.9's
// broken LZ4 checksum, and decoding back into this package's Record.

// sampleRecords returns n records that mix null and empty keys and values,
// and headers, one with a null value: the cases a decoder can confuse.
func sampleRecords(n int) []batchtest.Record {
	recs := make([]batchtest.Record, n)
	for i := range recs {
		recs[i] = batchtest.Record{
			Key:       []byte{'k', byte('0' + i%10)},
			Value:     bytes.Repeat([]byte{'v', byte('a' + i%26)}, 20+i),
			Timestamp: 1_700_000_000_000 + int64(i)*7,
		}
		if i%3 == 1 {
			recs[i].Key = nil // null key
			recs[i].Headers = []kmsg.Header{{Key: "data-parse-format", Value: []byte("json")}, {Key: "nil", Value: nil}}
		}
		if i%4 == 2 {
			recs[i].Value = []byte{} // empty, not null
		}
	}
	return recs
}

// messageSet is batchtest.MessageSet as old producers wrote it: a magic 0
// wrapper compressed with lz4 carries the broken header checksum of Kafka
// 0.8/0.9, which the decoder must accept.
func messageSet(tb testing.TB, magic int8, recs []batchtest.Record, c batchtest.Codec, wrapperAttrs int8) []byte {
	tb.Helper()
	if magic == 0 && c.ID == CodecLZ4 {
		lz4 := c.Compress
		c.Compress = func(tb testing.TB, raw []byte) []byte { return breakLZ4Checksum(tb, lz4(tb, raw)) }
	}
	return batchtest.MessageSet(tb, magic, recs, c, wrapperAttrs)
}

// breakLZ4Checksum makes frame's header checksum what Kafka 0.8/0.9 wrote:
// xxh32 over the frame magic and the descriptor (KAFKA-3160).
func breakLZ4Checksum(tb testing.TB, frame []byte) []byte {
	frame = append([]byte{}, frame...)
	off := lz4HeaderChecksumOffset(frame)
	if off < 0 {
		tb.Fatal("not an lz4 frame")
	}
	frame[off] = byte(xxh32(frame[:off], 0) >> 8)
	return frame
}

// decodeAll decodes data and returns copies of its records.
func decodeAll(tb testing.TB, d *Decoder, magic int8, data []byte, opt DecodeOptions) ([]Record, error) {
	tb.Helper()
	var out []Record
	err := d.Decode(magic, data, opt, func(r *Record) error {
		c := Record{OffsetDelta: r.OffsetDelta, Timestamp: r.Timestamp, Key: clone(r.Key), Value: clone(r.Value)}
		for _, h := range r.Headers {
			c.Headers = append(c.Headers, Header{Key: h.Key, Value: clone(h.Value)})
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// compareRecords compares decoded records with what was written. wantTS
// overrides the expected timestamps when not nil.
func compareRecords(tb testing.TB, got []Record, want []batchtest.Record, wantTS func(i int) int64) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("decoded %d records, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		ts := w.Timestamp
		if wantTS != nil {
			ts = wantTS(i)
		}
		if g.OffsetDelta != int32(i) || g.Timestamp != ts {
			tb.Errorf("record %d: offset delta %d, timestamp %d; want %d, %d", i, g.OffsetDelta, g.Timestamp, i, ts)
		}
		if !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) {
			tb.Errorf("record %d: key %q value %q; want %q %q", i, g.Key, g.Value, w.Key, w.Value)
		}
		if len(g.Headers) != len(w.Headers) {
			tb.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j, h := range g.Headers {
			if h.Key != w.Headers[j].Key || !sameBytes(h.Value, w.Headers[j].Value) {
				tb.Errorf("record %d header %d: %q=%q, want %q=%q", i, j, h.Key, h.Value, w.Headers[j].Key, w.Headers[j].Value)
			}
		}
	}
}

// sameBytes is bytes.Equal that also tells null from empty.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}
