package shardwriter

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The seed corpus lives in testdata/fuzz/FuzzConvert. Regenerate it with
//
//	CONVERT_WRITE_CORPUS=1 go test -run TestWriteConvertFuzzCorpus ./shardwriter/
//
// fixCRC makes the target recompute the checksums the framing allows, so
// that mutated bytes reach decompression, record parsing and conversion.

const cvtFuzzLimit = 1 << 20 // decompression bound, small to keep runs fast

// FuzzConvert converts arbitrary stored batches into small LogGroups and
// checks that Convert never panics, agrees with wal/batch on what decodes,
// delivers every record exactly once within the limits, and restores the
// group on error.
func FuzzConvert(f *testing.F) {
	for _, s := range cvtFuzzSeeds(f) {
		f.Add(s.magic, s.data, s.json, s.fixCRC, s.maxLogs)
	}
	// Decoders and the Converter are built once: their decompressors are
	// costly to build, and reuse across inputs is what the writer does.
	// Inputs run one at a time in a fuzzing process.
	opt := ConvertOptions{MaxDecompressedBytes: cvtFuzzLimit, KeyField: "key", HeadersAsFields: true, HeaderPrefix: "h."}
	c := NewConverter(opt)
	var ref batch.Decoder
	f.Fuzz(func(t *testing.T, magic int8, data []byte, jsonMode, fixCRC bool, maxLogs uint8) {
		if fixCRC {
			data = batchtest.FixCRCs(data)
		}
		e := &wal.Entry{Magic: magic, ReceivedAt: cvtReceived, JSON: jsonMode, Data: data}
		lim := LogGroupLimits{MaxBytes: 2048, MaxLogs: int(maxLogs%16) + 1}

		var want int
		refErr := ref.Decode(magic, data, batch.DecodeOptions{MaxDecompressedBytes: cvtFuzzLimit}, func(*batch.Record) error {
			want++
			return nil
		})

		var first []byte
		for run := range 2 { // twice: the second run reuses every buffer
			g := NewLogGroupBuilder(lim)
			prior := cvtLog{Time: 7, TimeNs: 8, Contents: [][2]string{{"content", "prior"}}}
			cvtAppend(g, prior)
			var out []byte // every group flushed, then what g keeps
			var flushedLogs int
			flush := func(g *LogGroupBuilder) error {
				if g.Logs() > lim.MaxLogs || g.Size() > lim.MaxBytes && g.Logs() > 1 {
					t.Fatalf("flushed %d logs, %d bytes", g.Logs(), g.Size())
				}
				raw := g.Bytes("topic", "", nil)
				cvtFuzzCheckGroup(t, raw)
				flushedLogs += g.Logs()
				out = append(out, raw...)
				return nil
			}
			n, err := c.Convert(g, e, cvtNow, flush)
			if (err == nil) != (refErr == nil) {
				t.Fatalf("Convert: %v; wal/batch: %v", err, refErr)
			}
			// prior goes out with the first flush, if any.
			delivered, priorInG := 0, 1
			if flushedLogs > 0 {
				delivered, priorInG = flushedLogs-1, 0
			}
			if err != nil {
				if !errors.Is(err, ErrUndecodable) {
					t.Fatalf("error %v does not wrap ErrUndecodable", err)
				}
				if n != delivered || g.Logs() != priorInG {
					t.Fatalf("error with %d logs flushed: n %d, g holds %d logs", delivered, n, g.Logs())
				}
			} else if n != want || delivered+g.Logs()-priorInG != want {
				t.Fatalf("converted %d (n %d) of %d records", delivered+g.Logs()-priorInG, n, want)
			}
			raw := g.Bytes("", "", nil)
			cvtFuzzCheckGroup(t, raw)
			out = append(out, raw...)
			if run == 0 {
				first = out
			} else if !bytes.Equal(first, out) {
				t.Fatal("a reused Converter converted differently")
			}
		}
	})
}

// cvtFuzzCheckGroup checks that the SDK reads raw and that its logs are
// well formed: a field at least, no empty key, a time in the window.
func cvtFuzzCheckGroup(t *testing.T, raw []byte) {
	var lg sls.LogGroup
	if err := proto.Unmarshal(raw, &lg); err != nil {
		t.Fatalf("the SDK cannot read the group: %v", err)
	}
	lo, hi := cvtNow.Add(-7*24*time.Hour).Unix(), cvtNow.Add(15*time.Minute).Unix()
	for _, l := range lg.Logs {
		if len(l.Contents) == 0 || int64(l.GetTime()) < lo && l.GetTime() != 7 || int64(l.GetTime()) > hi || l.GetTimeNs() >= 1e9 {
			t.Fatalf("log %v", l)
		}
		for _, c := range l.Contents {
			if c.GetKey() == "" {
				t.Fatalf("empty key in %v", l)
			}
		}
	}
}

type cvtFuzzSeed struct {
	name    string
	magic   int8
	data    []byte
	json    bool
	fixCRC  bool
	maxLogs uint8
}

func cvtFuzzSeeds(tb testing.TB) []cvtFuzzSeed {
	recs := cvtSampleRecords(6)
	recs[0].Headers = []kmsg.Header{{Key: "trace", Value: []byte("t-1")}, {Key: "", Value: nil}}
	beats := cvtBeatsRecords(2)
	plain := []batchtest.Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: cvtNow.UnixMilli()}, {Value: []byte(`{"a":1,"b":[1, 2]}`), Timestamp: -1}}
	var seeds []cvtFuzzSeed
	for _, c := range batchtest.Codecs {
		seeds = append(seeds,
			cvtFuzzSeed{"v2-" + c.Name, 2, batchtest.RecordBatch(tb, recs, c, nil), false, false, 3},
			cvtFuzzSeed{"v2-json-" + c.Name, 2, batchtest.RecordBatch(tb, beats, c, nil), true, false, 15},
		)
		if c.ID == 4 {
			continue
		}
		seeds = append(seeds,
			cvtFuzzSeed{"v1-" + c.Name, 1, batchtest.MessageSet(tb, 1, plain, c, 0), true, false, 0},
			cvtFuzzSeed{"v0-" + c.Name, 0, batchtest.MessageSet(tb, 0, plain, c, 0), false, false, 1},
		)
	}
	good := batchtest.RecordBatch(tb, recs, batchtest.None, nil)
	v1 := batchtest.MessageSet(tb, 1, plain, batchtest.Gzip, 0)
	big := []batchtest.Record{{Value: []byte(strings.Repeat("z", 5000)), Timestamp: cvtNow.UnixMilli()}, {Value: []byte("small"), Timestamp: cvtNow.UnixMilli()}}
	seeds = append(seeds,
		cvtFuzzSeed{"v2-log-append-time", 2, batchtest.RecordBatch(tb, recs, batchtest.Gzip, func(b *kmsg.RecordBatch) { b.Attributes |= 0x08 }), false, false, 2},
		cvtFuzzSeed{"v1-log-append-time", 1, batchtest.MessageSet(tb, 1, plain, batchtest.Snappy, 0x08), false, false, 2},
		cvtFuzzSeed{"v2-record-larger-than-group", 2, batchtest.RecordBatch(tb, big, batchtest.None, nil), false, false, 15},
		cvtFuzzSeed{"v2-fixcrc", 2, good, true, true, 4},
		cvtFuzzSeed{"corrupt-v2-bad-crc", 2, append(append([]byte{}, good[:30]...), append([]byte{good[30] ^ 1}, good[31:]...)...), false, false, 0},
		cvtFuzzSeed{"corrupt-v2-truncated", 2, good[:len(good)-5], false, false, 0},
		cvtFuzzSeed{"corrupt-v2-count", 2, batchtest.RecordBatch(tb, recs, batchtest.None, func(b *kmsg.RecordBatch) { b.NumRecords = 9 }), false, true, 1},
		cvtFuzzSeed{"corrupt-v1-truncated", 1, v1[:len(v1)-1], false, false, 0},
		cvtFuzzSeed{"corrupt-magic", 5, good, false, false, 0},
	)
	files, _ := filepath.Glob(filepath.Join("..", "wal", "batch", "testdata", "realworld", "*.bin"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, cvtFuzzSeed{"realworld-" + strings.TrimSuffix(filepath.Base(file), ".bin"), int8(data[16]), data, false, false, 5})
	}
	return seeds
}

// TestWriteConvertFuzzCorpus writes the seed corpus (see the top of this
// file).
func TestWriteConvertFuzzCorpus(t *testing.T) {
	if os.Getenv("CONVERT_WRITE_CORPUS") == "" {
		t.Skip("set CONVERT_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzConvert")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzConvert")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range cvtFuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\nint8(%d)\n[]byte(%q)\nbool(%v)\nbool(%v)\nbyte(%d)\n", s.magic, s.data, s.json, s.fixCRC, s.maxLogs)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
