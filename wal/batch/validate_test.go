package batch

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// TestRoundTrip validates and decodes every format with every codec it
// allows and compares what comes out with what went in.
func TestRoundTrip(t *testing.T) {
	recs := sampleRecords(12)
	for _, c := range batchtest.Codecs {
		t.Run("v2/"+c.Name, func(t *testing.T) {
			data := batchtest.RecordBatch(t, recs, c, nil)
			info, err := Validate(data, ValidateOptions{ProduceVersion: 9})
			if err != nil {
				t.Fatal(err)
			}
			want := Info{Magic: 2, Codec: c.ID, Records: 12, Unopened: c.ID != CodecNone, Attributes: int16(c.ID),
				FirstTimestamp: recs[0].Timestamp, MaxTimestamp: recs[11].Timestamp, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
			if info != want {
				t.Fatalf("info %+v, want %+v", info, want)
			}
			got, err := decodeAll(t, new(Decoder), 2, data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			compareRecords(t, got, recs, nil)
		})
		if c.ID == CodecZstd {
			continue // zstd needs magic 2
		}
		for _, magic := range []int8{0, 1} {
			t.Run("v"+string(rune('0'+magic))+"/"+c.Name, func(t *testing.T) {
				// Messages of a MessageSet have no headers.
				plain := make([]batchtest.Record, len(recs))
				for i, r := range recs {
					plain[i] = batchtest.Record{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
				}
				data := messageSet(t, magic, plain, c, 0)
				info, err := Validate(data, ValidateOptions{ProduceVersion: int16(magic) * 2})
				if err != nil {
					t.Fatal(err)
				}
				first, last := plain[0].Timestamp, plain[11].Timestamp
				switch {
				case magic == 0:
					first, last = -1, -1
				case c.ID != CodecNone:
					// Counted by its offset, not opened: the wrapper's
					// timestamp (the largest) stands for all.
					first = last
				}
				if info.Magic != magic || info.Codec != c.ID || info.Records != 12 || info.Unopened != (magic == 1 && c.ID != CodecNone) ||
					info.FirstTimestamp != first || info.MaxTimestamp != last || info.ProducerID != -1 {
					t.Fatalf("info %+v", info)
				}
				got, err := decodeAll(t, new(Decoder), magic, data, DecodeOptions{})
				if err != nil {
					t.Fatal(err)
				}
				compareRecords(t, got, plain, func(i int) int64 {
					if magic == 0 {
						return -1
					}
					return plain[i].Timestamp
				})
			})
		}
	}
}

func TestTimestamps(t *testing.T) {
	recs := sampleRecords(3)
	logAppend := func(b *kmsg.RecordBatch) {
		b.Attributes |= attrLogAppendTime
		b.MaxTimestamp = 1_800_000_000_000
	}
	data := batchtest.RecordBatch(t, recs, batchtest.None, logAppend)
	got, err := decodeAll(t, new(Decoder), 2, data, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	compareRecords(t, got, recs, func(int) int64 { return 1_800_000_000_000 })

	negative := []batchtest.Record{{Value: []byte("x"), Timestamp: -5}}
	got, err = decodeAll(t, new(Decoder), 2, batchtest.RecordBatch(t, negative, batchtest.None, nil), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	compareRecords(t, got, negative, func(int) int64 { return -1 })

	// Inner messages of a LogAppendTime wrapper take the wrapper's time.
	plain := []batchtest.Record{{Value: []byte("a"), Timestamp: 10}, {Value: []byte("b"), Timestamp: 20}}
	set := messageSet(t, 1, plain, batchtest.Gzip, attrLogAppendTime)
	got, err = decodeAll(t, new(Decoder), 1, set, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	compareRecords(t, got, plain, func(int) int64 { return 20 })
}

func TestValidate(t *testing.T) {
	recs := sampleRecords(5)
	none, gz, zs := batchtest.None, batchtest.Gzip, batchtest.Zstd
	f := func(name string, data []byte, opt ValidateOptions, wantErr error) {
		t.Helper()
		info, err := Validate(data, opt)
		switch {
		case wantErr == nil && err != nil:
			t.Errorf("%s: unexpected error %v", name, err)
		case wantErr != nil && !errors.Is(err, wantErr):
			t.Errorf("%s: error %v, want %v", name, err, wantErr)
		case wantErr == nil && info.Records <= 0:
			t.Errorf("%s: info %+v", name, info)
		}
	}
	v9 := ValidateOptions{ProduceVersion: 9}
	f("v2 none", batchtest.RecordBatch(t, recs, none, nil), v9, nil)
	f("v2 gzip", batchtest.RecordBatch(t, recs, gz, nil), v9, nil)
	f("v2 zstd produce v7", batchtest.RecordBatch(t, recs, zs, nil), ValidateOptions{ProduceVersion: 7}, nil)
	f("v2 zstd produce v6", batchtest.RecordBatch(t, recs, zs, nil), ValidateOptions{ProduceVersion: 6}, kerr.UnsupportedCompressionType)
	f("v2 produce v2", batchtest.RecordBatch(t, recs, none, nil), ValidateOptions{ProduceVersion: 2, MaxBytes: 1 << 20}, nil)
	f("v2 idempotent", batchtest.RecordBatch(t, recs, none, func(b *kmsg.RecordBatch) {
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = 7, 0, 42
	}), v9, nil)
	f("v2 idempotent without sequence", batchtest.RecordBatch(t, recs, none, func(b *kmsg.RecordBatch) {
		b.ProducerID, b.ProducerEpoch = 7, 0
	}), v9, kerr.InvalidRecord)
	f("v2 transactional", batchtest.RecordBatch(t, recs, none, func(b *kmsg.RecordBatch) {
		b.Attributes |= attrTransactional
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = 7, 0, 0
	}), v9, kerr.InvalidRecord)
	f("v2 control", batchtest.RecordBatch(t, recs, none, func(b *kmsg.RecordBatch) { b.Attributes |= attrControl }), v9, kerr.InvalidRecord)
	f("v2 base offset", batchtest.RecordBatch(t, recs, none, func(b *kmsg.RecordBatch) { b.FirstOffset = 3 }), v9, kerr.InvalidRecord)
	f("v2 no records", batchtest.RecordBatch(t, nil, none, nil), v9, kerr.InvalidRecord)
	f("v2 negative count", batchtest.RecordBatch(t, recs, gz, func(b *kmsg.RecordBatch) { b.NumRecords = -1 }), v9, kerr.InvalidRecord)
	f("v2 lastOffsetDelta", batchtest.RecordBatch(t, recs, gz, func(b *kmsg.RecordBatch) { b.LastOffsetDelta = 9 }), v9, kerr.InvalidRecord)
	f("v2 record count too high", batchtest.RecordBatch(t, recs, none, func(b *kmsg.RecordBatch) {
		b.NumRecords, b.LastOffsetDelta = 6, 5
	}), v9, kerr.InvalidRecord)
	f("v2 record count too low", batchtest.RecordBatch(t, recs, none, func(b *kmsg.RecordBatch) {
		b.NumRecords, b.LastOffsetDelta = 4, 3
	}), v9, kerr.InvalidRecord)
	// A compressed v2 batch is not decompressed: a wrong count inside
	// passes here and is found at delivery.
	f("v2 gzip count not checked", batchtest.RecordBatch(t, recs, gz, func(b *kmsg.RecordBatch) {
		b.NumRecords, b.LastOffsetDelta = 6, 5
	}), v9, nil)
	f("v2 max bytes", batchtest.RecordBatch(t, recs, none, nil), ValidateOptions{ProduceVersion: 9, MaxBytes: 100}, kerr.MessageTooLarge)
	twice := append(batchtest.RecordBatch(t, recs, none, nil), batchtest.RecordBatch(t, recs, none, nil)...)
	f("v2 two batches", twice, v9, kerr.InvalidRecord)
	f("v2 two batches produce v2", twice, ValidateOptions{ProduceVersion: 2}, kerr.InvalidRecord)
	f("v2 then v1", append(batchtest.RecordBatch(t, recs, none, nil), messageSet(t, 1, recs[:1], none, 0)...), ValidateOptions{ProduceVersion: 2}, kerr.InvalidRecord)

	f("empty", nil, v9, ErrEmpty)
	f("empty is invalid record", []byte{}, ValidateOptions{}, kerr.InvalidRecord)
	f("tiny", []byte{0, 1, 2}, v9, kerr.CorruptMessage)
	f("magic 3", append(make([]byte, 16), 3, 0, 0, 0, 0), v9, kerr.CorruptMessage)

	plain := []batchtest.Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: 5}, {Value: []byte("w"), Timestamp: 6}}
	f("v0 none", messageSet(t, 0, plain, none, 0), ValidateOptions{ProduceVersion: 0}, nil)
	f("v1 gzip", messageSet(t, 1, plain, gz, 0), ValidateOptions{ProduceVersion: 2}, nil)
	f("v1 on produce v3", messageSet(t, 1, plain, none, 0), ValidateOptions{ProduceVersion: 3}, kerr.InvalidRecord)
	f("v0 then v1", append(messageSet(t, 0, plain, none, 0), messageSet(t, 1, plain, none, 0)...), ValidateOptions{}, kerr.InvalidRecord)
	f("v1 zstd", messageSet(t, 1, plain, zs, 0), ValidateOptions{ProduceVersion: 2}, kerr.UnsupportedCompressionType)
	f("v1 gzip decompressed too large", messageSet(t, 1, plain, gz, 0),
		ValidateOptions{ProduceVersion: 2, MaxDecompressedBytes: 20}, kerr.MessageTooLarge)
	f("v1 null wrapper value", batchtest.Message(1, 0, CodecGzip, 0, nil, nil), ValidateOptions{ProduceVersion: 2}, kerr.InvalidRecord)
	f("v1 empty wrapper", batchtest.Message(1, 0, CodecGzip, 0, nil, batchtest.Gzip.Compress(t, nil)), ValidateOptions{ProduceVersion: 2}, kerr.InvalidRecord)
	f("v1 wrapper with v0 inside", batchtest.Message(1, 0, CodecGzip, 0, nil, batchtest.Gzip.Compress(t, messageSet(t, 0, plain, none, 0))),
		ValidateOptions{ProduceVersion: 2}, kerr.InvalidRecord)
}

// TestCorruption is the catalogue of damaged inputs: each must be rejected
// with the named error and must not panic Decode either.
func TestCorruption(t *testing.T) {
	recs := sampleRecords(5)
	none, gz, sn, x, lz, zs := batchtest.None, batchtest.Gzip, batchtest.Snappy, batchtest.SnappyXerial, batchtest.LZ4, batchtest.Zstd
	good := batchtest.RecordBatch(t, recs, none, nil)
	plain := []batchtest.Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: 5}, {Value: []byte("w"), Timestamp: 6}}
	v1 := messageSet(t, 1, plain, none, 0)

	mut := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte{}, b...)) }
	type tc struct {
		name    string
		data    []byte
		version int16
		want    *kerr.Error
	}
	cases := []tc{
		{"bad crc", mut(good, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 9, kerr.CorruptMessage},
		{"bad crc field", mut(good, func(b []byte) []byte { b[18] ^= 1; return b }), 9, kerr.CorruptMessage},
		{"truncated batch", good[:len(good)-3], 9, kerr.CorruptMessage},
		{"truncated header", good[:40], 9, kerr.CorruptMessage},
		{"length too large", mut(good, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)))
			return b
		}), 9, kerr.CorruptMessage},
		{"length too small", mut(good, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)-20))
			return b
		}), 9, kerr.CorruptMessage},
		{"length below minimum", mut(good, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 20)
			return b
		}), 9, kerr.CorruptMessage},
		{"length too small, crc recomputed", mut(good, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12-3))
			return batchtest.FixRecordBatchCRC(b[:len(b)-3])[:len(b)]
		}), 9, kerr.CorruptMessage},
		{"wrong record count", batchtest.RecordBatch(t, recs, none, func(b *kmsg.RecordBatch) { b.NumRecords = 3 }), 9, kerr.InvalidRecord},
		{"record length too large", mut(good, func(b []byte) []byte {
			b[batchHeaderLen] = 0x7e // first record's length varint: 63
			return batchtest.FixRecordBatchCRC(b)
		}), 9, kerr.InvalidRecord},
		{"record length too small", mut(good, func(b []byte) []byte {
			b[batchHeaderLen] = 2 // first record's length varint: 1
			return batchtest.FixRecordBatchCRC(b)
		}), 9, kerr.InvalidRecord},
		{"negative header count", batchtest.RecordBatch(t, recs[1:2], none, func(b *kmsg.RecordBatch) {
			// the record ends with two headers (count 4 zigzag) and their bytes;
			// rewrite its count to -1 by re-encoding the record by hand.
			r := kmsg.Record{Key: nil, Value: []byte("v")}
			body := r.AppendTo(nil)
			body[len(body)-1] = 1 // header count varint -1
			r.Length = int32(len(body) - 1)
			enc := r.AppendTo(nil)
			enc[len(enc)-1] = 1
			b.Records = enc
		}), 9, kerr.InvalidRecord},
		{"unknown codec", batchtest.RecordBatch(t, recs, none, func(b *kmsg.RecordBatch) { b.Attributes = 5 }), 9, kerr.UnsupportedCompressionType},
		{"unknown codec 7", batchtest.RecordBatch(t, recs, gz, func(b *kmsg.RecordBatch) { b.Attributes = 7 }), 9, kerr.UnsupportedCompressionType},
		{"zstd on produce v3", batchtest.RecordBatch(t, recs, zs, nil), 3, kerr.UnsupportedCompressionType},
		{"oversized", batchtest.RecordBatch(t, []batchtest.Record{{Value: make([]byte, DefaultMaxBytes)}}, none, nil), 9, kerr.MessageTooLarge},
		{"trailing garbage", append(append([]byte{}, good...), 1, 2, 3, 4, 5), 9, kerr.CorruptMessage},
		{"trailing partial batch", append(append([]byte{}, good...), good[:30]...), 9, kerr.CorruptMessage},
		{"v1 bad crc", mut(v1, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 2, kerr.CorruptMessage},
		{"v1 truncated", v1[:len(v1)-1], 2, kerr.CorruptMessage},
		{"v1 partial trailing message", append(append([]byte{}, v1...), v1[:20]...), 2, kerr.CorruptMessage},
		{"v1 partial trailing header", append(append([]byte{}, v1...), 0, 0, 0), 2, kerr.CorruptMessage},
		{"v1 size below minimum", mut(v1, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 5)
			return b
		}), 2, kerr.CorruptMessage},
		{"v1 key length too large", mut(v1, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[12+4+1+1+8:], 1000)
			return batchtest.FixMessageCRC(b)
		}), 2, kerr.CorruptMessage},
		{"v1 key length negative", mut(v1, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[12+4+1+1+8:], 0xfffffff0)
			return batchtest.FixMessageCRC(b)
		}), 2, kerr.CorruptMessage},
		{"v1 unknown codec", batchtest.Message(1, 0, 6, 0, nil, []byte("xx")), 2, kerr.UnsupportedCompressionType},
		{"v1 gzip garbage", batchtest.Message(1, 0, CodecGzip, 0, nil, []byte("not gzip")), 2, kerr.CorruptMessage},
		{"v1 gzip inner bad crc", batchtest.Message(1, 0, CodecGzip, 0, nil, batchtest.Gzip.Compress(t, mut(v1, func(b []byte) []byte {
			b[len(b)-1] ^= 1
			return b
		}))), 2, kerr.CorruptMessage},
		{"v1 gzip inner truncated", batchtest.Message(1, 0, CodecGzip, 0, nil, batchtest.Gzip.Compress(t, v1[:len(v1)-2])), 2, kerr.CorruptMessage},
		{"v1 snappy lying length", batchtest.Message(1, 0, CodecSnappy, 0, nil, []byte{0xff, 0xff, 0xff, 0x0f, 0}), 2, kerr.CorruptMessage},
		{"v1 xerial truncated block", batchtest.Message(1, 0, CodecSnappy, 0, nil, batchtest.XerialFrame(v1, 30)[:40]), 2, kerr.CorruptMessage},
		{"v1 nested compression", batchtest.Message(1, 0, CodecGzip, 0, nil, batchtest.Gzip.Compress(t, messageSet(t, 1, plain, sn, 0))), 2, kerr.InvalidRecord},
		{"v0 nested compression", batchtest.Message(0, 0, CodecSnappy, 0, nil, x.Compress(t, messageSet(t, 0, plain, lz, 0))), 0, kerr.InvalidRecord},
		{"v1 lz4 broken checksum", batchtest.Message(1, 0, CodecLZ4, 0, nil, breakLZ4Checksum(t, batchtest.LZ4.Compress(t, v1))), 2, kerr.CorruptMessage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Validate(c.data, ValidateOptions{ProduceVersion: c.version})
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			t.Log(err)
			magic := int8(2)
			if len(c.data) > magicOffset {
				magic = int8(c.data[magicOffset])
			}
			_ = new(Decoder).Decode(magic, c.data, DecodeOptions{}, func(*Record) error { return nil })
		})
	}

	// Inputs that look odd but must be accepted and decoded.
	accepted := []struct {
		name  string
		magic int8
		data  []byte
	}{
		{"magic 0 lz4 with the broken checksum", 0, messageSet(t, 0, plain, lz, 0)},
		{"magic 0 lz4 with a correct checksum", 0, batchtest.Message(0, 1, CodecLZ4, 0, nil, batchtest.LZ4.Compress(t, messageSet(t, 0, plain, none, 0)))},
		{"xerial snappy", 1, messageSet(t, 1, plain, x, 0)},
		{"xerial snappy, one block per byte", 1, batchtest.Message(1, 1, CodecSnappy, 6, nil, batchtest.XerialFrame(messageSet(t, 1, plain, none, 0), 1))},
		{"two wrappers", 1, append(messageSet(t, 1, plain, gz, 0), messageSet(t, 1, plain, sn, 0)...)},
		{"wrapper then plain", 1, append(messageSet(t, 1, plain, gz, 0), messageSet(t, 1, plain, none, 0)...)},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			info, err := Validate(c.data, ValidateOptions{ProduceVersion: int16(c.magic) * 2})
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeAll(t, new(Decoder), c.magic, c.data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if int32(len(got)) != info.Records {
				t.Fatalf("decoded %d records, Validate counted %d", len(got), info.Records)
			}
			for i, r := range got {
				if r.OffsetDelta != int32(i) || !sameBytes(r.Value, plain[i%2].Value) || !sameBytes(r.Key, plain[i%2].Key) {
					t.Fatalf("record %d: %+v", i, r)
				}
			}
		})
	}
}

// TestLZ4HeaderChecksum checks xxh32 against the checksum pierrec/lz4 writes.
func TestLZ4HeaderChecksum(t *testing.T) {
	frame := batchtest.LZ4.Compress(t, []byte("hello, hello, hello"))
	off := lz4HeaderChecksumOffset(frame)
	if off < 0 {
		t.Fatal("no frame header")
	}
	want := frame[off]
	broken := breakLZ4Checksum(t, frame)
	if broken[off] == want {
		t.Fatal("the broken checksum equals the right one; pick other data")
	}
	fixLZ4HeaderChecksum(broken)
	if broken[off] != want {
		t.Fatalf("fixed checksum %#x, want %#x", broken[off], want)
	}
	// Known XXH32 values from the reference implementation.
	for _, c := range []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0x02cc5d05},
		{"a", 0, 0x550d7456},
		{"abc", 0, 0x32d153ff},
		{"Nobody inspects the spammish repetition", 0, 0xe2293b2f},
	} {
		if got := xxh32([]byte(c.in), c.seed); got != c.want {
			t.Errorf("xxh32(%q) = %#x, want %#x", c.in, got, c.want)
		}
	}
}

// TestValidateAllocs keeps the ack path allocation-free for v2 batches.
func TestValidateAllocs(t *testing.T) {
	for _, c := range []batchtest.Codec{batchtest.None, batchtest.Gzip} {
		data := batchtest.RecordBatch(t, sampleRecords(50), c, nil)
		n := testing.AllocsPerRun(100, func() {
			if _, err := Validate(data, ValidateOptions{ProduceVersion: 9}); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per Validate", c.Name, n)
		}
	}
}

// TestValidateConcurrent runs Validate from several goroutines, sharing the
// decompressor pool (run with -race).
func TestValidateConcurrent(t *testing.T) {
	plain := make([]batchtest.Record, 50)
	for i := range plain {
		plain[i] = batchtest.Record{Value: []byte{byte(i)}, Timestamp: int64(i)}
	}
	var sets [][]byte
	for _, c := range batchtest.Codecs[:5] {
		sets = append(sets, messageSet(t, 1, plain, c, 0))
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 50 {
				info, e := Validate(sets[(g+i)%len(sets)], ValidateOptions{ProduceVersion: 2})
				if e != nil || info.Records != 50 {
					err = errors.Join(err, e, errors.New("wrong count"))
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
