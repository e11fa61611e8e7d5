package batch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// The seed corpora live in testdata/fuzz/FuzzValidate and
// testdata/fuzz/FuzzDecode. Regenerate them with
//
//	BATCH_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus ./wal/batch/
//
// Both targets take a fixCRC flag: random bytes almost never carry a valid
// CRC, so with the flag set the target first recomputes the checksums the
// framing allows (batchtest.FixCRCs), letting the fuzzer reach record
// parsing and decompression.

const fuzzLimit = 1 << 20 // decompression bound, small to keep runs fast

var kinds = []*kerr.Error{kerr.CorruptMessage, kerr.InvalidRecord, kerr.UnsupportedCompressionType, kerr.MessageTooLarge}

func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16, fixCRC bool) {
		if fixCRC {
			data = batchtest.FixCRCs(data)
		}
		opt := ValidateOptions{ProduceVersion: version, MaxDecompressedBytes: fuzzLimit}
		info, err := Validate(data, opt)
		if err != nil {
			for _, k := range kinds {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("error %v wraps no kerr value", err)
		}
		if info.Records <= 0 || info.Magic != int8(data[magicOffset]) {
			t.Fatalf("accepted with info %+v", info)
		}
		// Whatever Validate accepts, Decode must decode to the same count,
		// except what Validate counted without opening it: compressed v2
		// batches (Decode then checks the count) and magic 1 wrappers
		// counted by their offset (any count: all are delivered).
		var n int32
		err = new(Decoder).Decode(info.Magic, data, DecodeOptions{MaxDecompressedBytes: fuzzLimit}, func(*Record) error {
			n++
			return nil
		})
		if info.Magic == 2 && info.Unopened != (info.Codec != CodecNone) {
			t.Fatalf("v2 batch with codec %d, Unopened %v", info.Codec, info.Unopened)
		}
		switch {
		case err != nil && !errors.Is(err, kerr.CorruptMessage):
			t.Fatalf("decode error %v does not wrap CORRUPT_MESSAGE", err)
		case err != nil && !info.Unopened:
			t.Fatalf("validated (%+v) but does not decode: %v", info, err)
		case err == nil && n != info.Records && !(info.Unopened && info.Magic == 1):
			t.Fatalf("validated %d records, decoded %d", info.Records, n)
		case info.Unopened && (info.Magic == 0 || info.Codec == CodecNone):
			t.Fatalf("validated %+v: only compressed v2 or magic 1 can be unopened", info)
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, magic int8, data []byte, fixCRC bool) {
		if fixCRC {
			data = batchtest.FixCRCs(data)
		}
		var d Decoder
		for range 2 { // twice: the second run reuses the buffers
			var n int32
			err := d.Decode(magic, data, DecodeOptions{MaxDecompressedBytes: fuzzLimit}, func(r *Record) error {
				if magic < 2 && r.OffsetDelta != n || r.Timestamp < -1 {
					t.Fatalf("record %d: %+v", n, r)
				}
				n++
				return nil
			})
			if err != nil && !errors.Is(err, kerr.CorruptMessage) {
				t.Fatalf("error %v does not wrap CORRUPT_MESSAGE", err)
			}
		}
	})
}

type fuzzSeed struct {
	name    string
	data    []byte
	version int16
	fixCRC  bool
}

func fuzzSeeds(tb testing.TB) []fuzzSeed {
	recs := sampleRecords(4)
	plain := []batchtest.Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: 5}, {Value: []byte(`{"a":1}`), Timestamp: 6}}
	var seeds []fuzzSeed
	for _, c := range batchtest.Codecs {
		seeds = append(seeds, fuzzSeed{"v2-" + c.Name, batchtest.RecordBatch(tb, recs, c, nil), 9, false})
		if c.ID == CodecZstd {
			continue
		}
		seeds = append(seeds,
			fuzzSeed{"v1-" + c.Name, messageSet(tb, 1, plain, c, 0), 2, false},
			fuzzSeed{"v0-" + c.Name, messageSet(tb, 0, plain, c, 0), 0, false}, // lz4: the broken checksum
		)
	}
	good := batchtest.RecordBatch(tb, recs, batchtest.None, nil)
	v1 := messageSet(tb, 1, plain, batchtest.Gzip, 0)
	seeds = append(seeds,
		fuzzSeed{"v2-idempotent-fixcrc", batchtest.RecordBatch(tb, recs, batchtest.Gzip, func(b *kmsg.RecordBatch) {
			b.ProducerID, b.ProducerEpoch, b.FirstSequence = 1, 0, 0
		}), 9, true},
		fuzzSeed{"corrupt-v2-bad-crc", append(append([]byte{}, good[:30]...), append([]byte{good[30] ^ 1}, good[31:]...)...), 9, false},
		fuzzSeed{"corrupt-v2-truncated", good[:len(good)-5], 9, false},
		fuzzSeed{"corrupt-v2-trailing", append(append([]byte{}, good...), 0, 0, 0, 1), 9, false},
		fuzzSeed{"corrupt-v2-two-batches", append(append([]byte{}, good...), good...), 9, false},
		fuzzSeed{"corrupt-v2-count", batchtest.RecordBatch(tb, recs, batchtest.None, func(b *kmsg.RecordBatch) { b.NumRecords = 9 }), 9, true},
		fuzzSeed{"corrupt-v1-truncated", v1[:len(v1)-1], 2, false},
		fuzzSeed{"corrupt-v1-nested", batchtest.Message(1, 0, CodecGzip, 0, nil, batchtest.Gzip.Compress(tb, v1)), 2, true},
		fuzzSeed{"v1-two-wrappers-fixcrc", append(append([]byte{}, v1...), messageSet(tb, 1, plain, batchtest.SnappyXerial, 0)...), 2, true},
		// Counted by the wrapper's offset, not opened: the insides are
		// the writer's to refuse.
		fuzzSeed{"v1-counted-inner-bad-crc", batchtest.Message(1, 1, CodecGzip, 6, nil, batchtest.Gzip.Compress(tb, badLastByte(messageSet(tb, 1, plain, batchtest.None, 0)))), 2, false},
		fuzzSeed{"v1-counted-offset-too-high-fixcrc", batchtest.Message(1, 40, CodecLZ4, 6, nil, batchtest.LZ4.Compress(tb, messageSet(tb, 1, plain, batchtest.None, 0))), 2, true},
		fuzzSeed{"v1-counted-then-opened", append(append([]byte{}, v1...), batchtest.Message(1, 0, CodecGzip, 6, nil, batchtest.Gzip.Compress(tb, messageSet(tb, 1, plain, batchtest.None, 0)))...), 2, false},
	)
	files, _ := filepath.Glob(filepath.Join("testdata", "realworld", "*.bin"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		v := int16(9)
		if data[magicOffset] < 2 {
			v = 2
		}
		seeds = append(seeds, fuzzSeed{"realworld-" + filepath.Base(file), data, v, false})
	}
	return seeds
}

// TestWriteFuzzCorpus writes the seed corpora (see the top of this file).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("BATCH_WRITE_CORPUS") == "" {
		t.Skip("set BATCH_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	for _, s := range fuzzSeeds(t) {
		write := func(target, body string) {
			dir := filepath.Join("testdata", "fuzz", target)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "seed-"+s.name), []byte("go test fuzz v1\n"+body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("FuzzValidate", fmt.Sprintf("[]byte(%q)\nint16(%d)\nbool(%v)\n", s.data, s.version, s.fixCRC))
		write("FuzzDecode", fmt.Sprintf("int8(%d)\n[]byte(%q)\nbool(%v)\n", int8(s.data[magicOffset]), s.data, s.fixCRC))
	}
}

// badLastByte returns a copy of b with its last byte flipped: a message
// set whose last CRC no longer holds.
func badLastByte(b []byte) []byte {
	b = append([]byte{}, b...)
	b[len(b)-1] ^= 1
	return b
}
