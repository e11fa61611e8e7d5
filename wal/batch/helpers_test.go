package batch

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Test fixtures are real encodings: kmsg types for the framing and the real
// compressors for the payloads. Only the length and CRC fields, which kmsg
// leaves to the caller, are filled in here.

// tRec is a record as a test writes it and expects it back.
type tRec struct {
	key, value []byte
	headers    []kmsg.Header
	ts         int64 // absolute, ms
}

func sampleRecords(n int) []tRec {
	recs := make([]tRec, n)
	for i := range recs {
		recs[i] = tRec{
			key:   []byte{'k', byte('0' + i%10)},
			value: bytes.Repeat([]byte{'v', byte('a' + i%26)}, 20+i),
			ts:    1_700_000_000_000 + int64(i)*7,
		}
		if i%3 == 1 {
			recs[i].key = nil // null key
			recs[i].headers = []kmsg.Header{{Key: "data-parse-format", Value: []byte("json")}, {Key: "nil", Value: nil}}
		}
		if i%4 == 2 {
			recs[i].value = []byte{} // empty, not null
		}
	}
	return recs
}

// codecCase is one way to compress a payload.
type codecCase struct {
	name   string
	codec  int8
	encode func(tb testing.TB, raw []byte) []byte
}

var codecCases = []codecCase{
	{"none", CodecNone, func(_ testing.TB, raw []byte) []byte { return raw }},
	{"gzip", CodecGzip, gzipBytes},
	{"snappy", CodecSnappy, func(_ testing.TB, raw []byte) []byte { return snappy.Encode(nil, raw) }},
	{"snappy-xerial", CodecSnappy, func(_ testing.TB, raw []byte) []byte { return xerialBytes(raw, 100) }},
	{"lz4", CodecLZ4, lz4Bytes},
	{"zstd", CodecZstd, zstdBytes},
}

func gzipBytes(tb testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(raw); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func lz4Bytes(tb testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if _, err := w.Write(raw); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(tb testing.TB, raw []byte) []byte {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(raw, nil)
}

// xerialBytes frames raw as snappy-java's SnappyOutputStream does, in blocks
// of at most block bytes.
func xerialBytes(raw []byte, block int) []byte {
	out := append([]byte{}, xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1) // version
	out = binary.BigEndian.AppendUint32(out, 1) // compatible version
	for len(raw) > 0 {
		n := min(block, len(raw))
		enc := snappy.Encode(nil, raw[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(enc)))
		out = append(out, enc...)
		raw = raw[n:]
	}
	return out
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

// encodeRecords encodes recs as v2 records with the given base timestamp.
func encodeRecords(recs []tRec, base int64) []byte {
	var out []byte
	for i, r := range recs {
		kr := kmsg.Record{
			TimestampDelta64: r.ts - base,
			OffsetDelta:      int32(i),
			Key:              r.key,
			Value:            r.value,
			Headers:          r.headers,
		}
		body := kr.AppendTo(nil) // with Length 0: a one-byte varint
		kr.Length = int32(len(body) - 1)
		out = kr.AppendTo(out)
	}
	return out
}

// v2Batch builds a RecordBatch of recs compressed with enc. mod, if not nil,
// may change header fields before the length and CRC are computed.
func v2Batch(tb testing.TB, recs []tRec, c codecCase, mod func(*kmsg.RecordBatch)) []byte {
	first, maxTS := int64(-1), int64(-1)
	if len(recs) > 0 {
		first = recs[0].ts
		for _, r := range recs {
			maxTS = max(maxTS, r.ts)
		}
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(c.codec),
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              c.encode(tb, encodeRecords(recs, first)),
	}
	if mod != nil {
		mod(&b)
	}
	return finishBatch(b.AppendTo(nil))
}

// finishBatch fills in the batch length and CRC of an encoded batch.
func finishBatch(b []byte) []byte {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	return fixBatchCRC(b)
}

func fixBatchCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// legacyMessage encodes one v0/v1 message with its size and CRC filled in.
func encodeMessage(magic int8, offset int64, attrs int8, ts int64, key, value []byte) []byte {
	var b []byte
	if magic == 0 {
		m := kmsg.MessageV0{Offset: offset, Magic: 0, Attributes: attrs, Key: key, Value: value}
		b = m.AppendTo(nil)
	} else {
		m := kmsg.MessageV1{Offset: offset, Magic: 1, Attributes: attrs, Timestamp: ts, Key: key, Value: value}
		b = m.AppendTo(nil)
	}
	return finishMessage(b)
}

func finishMessage(b []byte) []byte {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	return fixMessageCRC(b)
}

// fixMessageCRC recomputes the CRC of the first message in b.
func fixMessageCRC(b []byte) []byte {
	end := 12 + int(binary.BigEndian.Uint32(b[8:]))
	binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:end]))
	return b
}

// messageSet builds a MessageSet of recs: plain messages for codec none,
// otherwise one wrapper message holding them compressed. wrapperAttrs are
// or-ed into the wrapper's attributes (e.g. attrLogAppendTime).
func messageSet(tb testing.TB, magic int8, recs []tRec, c codecCase, wrapperAttrs int8) []byte {
	var inner []byte
	maxTS := int64(-1)
	for i, r := range recs {
		inner = append(inner, encodeMessage(magic, int64(i), 0, r.ts, r.key, r.value)...)
		maxTS = max(maxTS, r.ts)
	}
	if c.codec == CodecNone {
		return inner
	}
	payload := c.encode(tb, inner)
	if magic == 0 && c.codec == CodecLZ4 {
		payload = breakLZ4Checksum(tb, payload)
	}
	return encodeMessage(magic, int64(len(recs)-1), c.codec|wrapperAttrs, maxTS, nil, payload)
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

// checkRecords compares decoded records with what was written. wantTS
// overrides the expected timestamps when not nil.
func compareRecords(tb testing.TB, got []Record, want []tRec, wantTS func(i int) int64) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("decoded %d records, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		ts := w.ts
		if wantTS != nil {
			ts = wantTS(i)
		}
		if g.OffsetDelta != int32(i) || g.Timestamp != ts {
			tb.Errorf("record %d: offset delta %d, timestamp %d; want %d, %d", i, g.OffsetDelta, g.Timestamp, i, ts)
		}
		if !sameBytes(g.Key, w.key) || !sameBytes(g.Value, w.value) {
			tb.Errorf("record %d: key %q value %q; want %q %q", i, g.Key, g.Value, w.key, w.value)
		}
		if len(g.Headers) != len(w.headers) {
			tb.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.headers))
		}
		for j, h := range g.Headers {
			if h.Key != w.headers[j].Key || !sameBytes(h.Value, w.headers[j].Value) {
				tb.Errorf("record %d header %d: %q=%q, want %q=%q", i, j, h.Key, h.Value, w.headers[j].Key, w.headers[j].Value)
			}
		}
	}
}

// sameBytes is bytes.Equal that also tells null from empty.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}
