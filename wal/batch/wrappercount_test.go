package batch

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// TestWrapperCount covers magic 1 wrappers counted by their offset: what
// Validate then accepts without opening them, what the writer's Decode
// must still refuse, and the wrappers that must be opened after all.
func TestWrapperCount(t *testing.T) {
	plain := []batchtest.Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: 5}, {Value: []byte("w"), Timestamp: 6}}
	none, gz, sn, lz := batchtest.None, batchtest.Gzip, batchtest.Snappy, batchtest.LZ4
	v1 := messageSet(t, 1, plain, none, 0) // two inner messages, offsets 0 and 1
	v1ts := int64(6)
	wrap := func(offset int64, codec int8, value []byte) []byte {
		return batchtest.Message(1, offset, codec, v1ts, nil, value)
	}
	mut := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte{}, b...)) }
	badInnerCRC := mut(v1, func(b []byte) []byte { b[len(b)-1] ^= 1; return b })

	// f validates data (Produce v2), expects wantRecords or wantErr from
	// Validate and, for accepted data, decodeErr (nil: decodes to
	// decoded records) from the writer's Decode.
	f := func(name string, data []byte, opt ValidateOptions, wantErr error, wantRecords int32, decodeErr error, decoded int) {
		t.Helper()
		opt.ProduceVersion = 2
		info, err := Validate(data, opt)
		switch {
		case wantErr != nil:
			if !errors.Is(err, wantErr) {
				t.Errorf("%s: Validate error %v, want %v", name, err, wantErr)
			}
			return
		case err != nil:
			t.Errorf("%s: Validate: %v", name, err)
			return
		case info.Records != wantRecords:
			t.Errorf("%s: Validate counted %d records, want %d", name, info.Records, wantRecords)
		}
		got, err := decodeAll(t, new(Decoder), 1, data, DecodeOptions{MaxDecompressedBytes: opt.MaxDecompressedBytes})
		switch {
		case decodeErr != nil && !errors.Is(err, decodeErr):
			t.Errorf("%s: Decode error %v, want %v", name, err, decodeErr)
		case decodeErr == nil && err != nil:
			t.Errorf("%s: Decode: %v", name, err)
		case decodeErr == nil && len(got) != decoded:
			t.Errorf("%s: decoded %d records, want %d", name, len(got), decoded)
		}
	}
	corrupt := kerr.CorruptMessage
	var o ValidateOptions

	// Producers that write the wrapper at n-1 (Java, franz-go): counted.
	for _, c := range []batchtest.Codec{gz, sn, batchtest.SnappyXerial, lz} {
		f("n-1 "+c.Name, messageSet(t, 1, plain, c, 0), o, nil, 2, nil, 2)
	}
	// What a counted wrapper hides is the writer's to find, as for a v2
	// batch: the entry does not decode and becomes a dead letter.
	f("counted, gzip garbage", wrap(1, CodecGzip, append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 'n', 'o', 't'}, 0, 0, 0, 0, 100, 0, 0, 0)), o, nil, 2, corrupt, 0)
	f("counted, inner bad crc", wrap(1, CodecGzip, gz.Compress(t, badInnerCRC)), o, nil, 2, corrupt, 0)
	f("counted, inner truncated", wrap(1, CodecGzip, gz.Compress(t, v1[:len(v1)-2])), o, nil, 2, corrupt, 0)
	f("counted, nested compression", wrap(1, CodecGzip, gz.Compress(t, messageSet(t, 1, plain, sn, 0))), o, nil, 2, corrupt, 0)
	four := append(append([]batchtest.Record{}, plain...), plain...)
	f("counted, magic 0 inside", wrap(1, CodecGzip, gz.Compress(t, messageSet(t, 0, four, none, 0))), o, nil, 2, corrupt, 0)
	f("counted, snappy garbage", wrap(1, CodecSnappy, []byte{0xff, 0xff, 0xff, 0x0f, 0}), o, nil, 2, corrupt, 0)
	f("counted, lz4 garbage", wrap(1, CodecLZ4, []byte("not an lz4 frame at all")), o, nil, 2, corrupt, 0)
	// A wrong count is not a fault: every inner message is delivered;
	// only the offsets the producer was told are off.
	f("offset past the last inner message", wrap(5, CodecLZ4, lz.Compress(t, v1)), o, nil, 6, nil, 2)
	// For gzip the trailer's ISIZE says 6 messages cannot be in 71
	// bytes: opened and counted.
	f("offset past the last inner message, gzip", wrap(5, CodecGzip, gz.Compress(t, v1)), o, nil, 2, nil, 2)
	f("two wrappers counted", append(messageSet(t, 1, plain, gz, 0), messageSet(t, 1, plain, lz, 0)...), o, nil, 4, nil, 4)
	f("counted then opened", append(messageSet(t, 1, plain, gz, 0), wrap(0, CodecGzip, gz.Compress(t, v1))...), o, nil, 4, nil, 4)

	// What the wrapper itself says is still checked on the ack path.
	f("counted, null value", wrap(1, CodecGzip, nil), o, kerr.InvalidRecord, 0, nil, 0)
	f("counted, zstd", wrap(1, CodecZstd, []byte{1, 2, 3}), o, kerr.UnsupportedCompressionType, 0, nil, 0)
	f("counted, wrapper crc", mut(messageSet(t, 1, plain, gz, 0), func(b []byte) []byte { b[len(b)-5] ^= 1; return b }), o, corrupt, 0, nil, 0)

	// Opened as before: offset 0 (sarama, librdkafka), and wrappers the
	// cheap checks cannot vouch for.
	f("offset 0", wrap(0, CodecGzip, gz.Compress(t, v1)), o, nil, 2, nil, 2)
	f("offset 0, inner bad crc", wrap(0, CodecGzip, gz.Compress(t, badInnerCRC)), o, corrupt, 0, nil, 0)
	f("negative offset", wrap(-1, CodecGzip, gz.Compress(t, badInnerCRC)), o, corrupt, 0, nil, 0)
	f("not gzip", wrap(1, CodecGzip, []byte("not gzip at all, not at all")), o, corrupt, 0, nil, 0)
	f("gzip too short", wrap(1, CodecGzip, []byte{0x1f, 0x8b, 8}), o, corrupt, 0, nil, 0)
	small := gz.Compress(t, badInnerCRC)
	binary.LittleEndian.PutUint32(small[len(small)-4:], 10) // ISIZE below two messages
	f("gzip ISIZE too small for the count", wrap(1, CodecGzip, small), o, corrupt, 0, nil, 0)
	f("gzip ISIZE over the limit", messageSet(t, 1, plain, gz, 0), ValidateOptions{MaxDecompressedBytes: 70}, kerr.MessageTooLarge, 0, nil, 0)
	f("snappy declares too little for the count", wrap(5, CodecSnappy, sn.Compress(t, v1)), o, nil, 2, nil, 2)
	f("snappy declares more than the limit", messageSet(t, 1, plain, sn, 0), ValidateOptions{MaxDecompressedBytes: 70}, kerr.MessageTooLarge, 0, nil, 0)
	f("xerial block past the end", wrap(1, CodecSnappy, batchtest.XerialFrame(v1, 30)[:40]), o, corrupt, 0, nil, 0)
	f("count over the limit", wrap(1<<22, CodecGzip, gz.Compress(t, badInnerCRC)), o, corrupt, 0, nil, 0)
	f("count over the limit, lz4", wrap(1<<40, CodecLZ4, lz.Compress(t, v1)), o, nil, 2, nil, 2)
	// offset+1 does not fit an int64: no count to take either.
	f("offset MaxInt64, lz4", wrap(math.MaxInt64, CodecLZ4, lz.Compress(t, v1)), o, nil, 2, nil, 2)
	f("offset MaxInt64, gzip", wrap(math.MaxInt64, CodecGzip, gz.Compress(t, badInnerCRC)), o, corrupt, 0, nil, 0)
	twoMembers := append(gz.Compress(t, v1[:len(v1)/2]), gz.Compress(t, v1[len(v1)/2:])...)
	f("two gzip members", wrap(1, CodecGzip, twoMembers), o, nil, 2, nil, 2)

	// Magic 0 is always opened, whatever its wrapper's offset.
	v0 := messageSet(t, 0, plain, none, 0)
	if info, err := Validate(batchtest.Message(0, 7, CodecGzip, 0, nil, gz.Compress(t, v0)), ValidateOptions{}); err != nil || info.Records != 2 {
		t.Errorf("magic 0 wrapper at offset 7: %+v, %v; want 2 records", info, err)
	}
	if _, err := Validate(batchtest.Message(0, 1, CodecGzip, 0, nil, gz.Compress(t, mut(v0, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }))), ValidateOptions{}); !errors.Is(err, corrupt) {
		t.Errorf("magic 0 wrapper at offset 1 with a bad inner crc: %v", err)
	}
}
