package batch

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

func TestDecodeErrors(t *testing.T) {
	recs := sampleRecords(8)
	none, gz := batchtest.None, batchtest.Gzip
	var d Decoder
	f := func(name string, magic int8, data []byte, opt DecodeOptions, wantErr error) {
		t.Helper()
		_, err := decodeAll(t, &d, magic, data, opt)
		if wantErr == nil && err != nil || wantErr != nil && !errors.Is(err, wantErr) {
			t.Errorf("%s: error %v, want %v", name, err, wantErr)
		}
	}
	f("ok", 2, batchtest.RecordBatch(t, recs, gz, nil), DecodeOptions{}, nil)
	f("wrong magic", 1, batchtest.RecordBatch(t, recs, gz, nil), DecodeOptions{}, kerr.CorruptMessage)
	f("magic 5", 5, batchtest.RecordBatch(t, recs, gz, nil), DecodeOptions{}, kerr.CorruptMessage)
	f("empty", 2, nil, DecodeOptions{}, kerr.CorruptMessage)
	f("empty set", 1, nil, DecodeOptions{}, kerr.CorruptMessage)
	f("stored as magic 0", 0, messageSet(t, 1, recs[:2], gz, 0), DecodeOptions{}, kerr.CorruptMessage)
	for _, c := range batchtest.Codecs[1:] {
		f(c.Name+" too large", 2, batchtest.RecordBatch(t, recs, c, nil), DecodeOptions{MaxDecompressedBytes: 100}, kerr.CorruptMessage)
		f(c.Name+" count too high", 2, batchtest.RecordBatch(t, recs, c, func(b *kmsg.RecordBatch) { b.NumRecords = 9 }), DecodeOptions{}, kerr.CorruptMessage)
		f(c.Name+" count too low", 2, batchtest.RecordBatch(t, recs, c, func(b *kmsg.RecordBatch) { b.NumRecords = 7 }), DecodeOptions{}, kerr.CorruptMessage)
		f(c.Name+" garbage", 2, batchtest.RecordBatch(t, recs, batchtest.Codec{Name: c.Name, ID: c.ID, Compress: func(testing.TB, []byte) []byte {
			return []byte("definitely not compressed data")
		}}, nil), DecodeOptions{}, kerr.CorruptMessage)
	}
	f("v1 too large", 1, messageSet(t, 1, recs, gz, 0), DecodeOptions{MaxDecompressedBytes: 100}, kerr.CorruptMessage)
	f("v1 nested compression", 1, batchtest.Message(1, 0, CodecGzip, 0, nil, batchtest.Gzip.Compress(t, messageSet(t, 1, recs, gz, 0))), DecodeOptions{}, kerr.CorruptMessage)
	f("trailing", 2, append(batchtest.RecordBatch(t, recs, none, nil), 0), DecodeOptions{}, kerr.CorruptMessage)

	// The callback's error comes back as it is, and stops decoding.
	stop := errors.New("stop")
	for _, data := range [][]byte{batchtest.RecordBatch(t, recs, gz, nil), messageSet(t, 1, recs, gz, 0)} {
		n := 0
		err := d.Decode(int8(data[magicOffset]), data, DecodeOptions{}, func(*Record) error {
			n++
			return stop
		})
		if err != stop || n != 1 {
			t.Errorf("callback error: got %v after %d records", err, n)
		}
	}

	// A control batch holds no user records.
	ctl := batchtest.RecordBatch(t, recs, none, func(b *kmsg.RecordBatch) { b.Attributes |= attrControl })
	if got, err := decodeAll(t, &d, 2, ctl, DecodeOptions{}); err != nil || len(got) != 0 {
		t.Errorf("control batch: %d records, %v", len(got), err)
	}
}

// TestDecoderReuse decodes different codecs and formats with one Decoder, as
// a delivery goroutine does, and checks the steady state does not allocate.
func TestDecoderReuse(t *testing.T) {
	recs := sampleRecords(30)
	var d Decoder
	for round := 0; round < 2; round++ {
		for _, c := range batchtest.Codecs {
			data := batchtest.RecordBatch(t, recs, c, nil)
			got, err := decodeAll(t, &d, 2, data, DecodeOptions{})
			if err != nil {
				t.Fatal(c.Name, err)
			}
			compareRecords(t, got, recs, nil)
		}
	}
	for _, c := range batchtest.Codecs {
		if c.ID == CodecZstd {
			continue // the zstd decoder allocates per frame internally
		}
		data := batchtest.RecordBatch(t, recs, c, nil)
		fn := func(*Record) error { return nil }
		if err := d.Decode(2, data, DecodeOptions{}, fn); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(50, func() { _ = d.Decode(2, data, DecodeOptions{}, fn) }); n > 0 {
			t.Logf("%s: %v allocations per Decode", c.Name, n)
			if c.ID == CodecNone || c.ID == CodecSnappy {
				t.Errorf("%s: Decode allocates in the steady state", c.Name)
			}
		}
	}
}

// TestDecompressionBomb checks every codec stops at the bound, in both
// Validate (MessageSets) and Decode.
func TestDecompressionBomb(t *testing.T) {
	zeros := make([]byte, 8<<20)
	const limit = 1 << 20
	for _, c := range batchtest.Codecs[1:] {
		payload := c.Compress(t, zeros)
		t.Logf("%s: %d bytes expand to %d", c.Name, len(payload), len(zeros))
		b := batchtest.RecordBatch(t, sampleRecords(1), batchtest.Codec{Name: c.Name, ID: c.ID, Compress: func(testing.TB, []byte) []byte { return payload }}, nil)
		err := new(Decoder).Decode(2, b, DecodeOptions{MaxDecompressedBytes: limit}, func(*Record) error { return nil })
		if !errors.Is(err, kerr.CorruptMessage) || !errors.Is(err, errDecompressedTooLarge) {
			t.Errorf("%s decode: %v", c.Name, err)
		}
		if c.ID == CodecZstd {
			continue
		}
		set := batchtest.Message(1, 0, c.ID, 0, nil, payload)
		_, err = Validate(set, ValidateOptions{ProduceVersion: 2, MaxDecompressedBytes: limit})
		if !errors.Is(err, kerr.MessageTooLarge) {
			t.Errorf("%s validate: %v", c.Name, err)
		}
	}
}
