package batch

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// benchRecords returns about size bytes of 1 KiB log-like records: JSON
// with varying fields, so compression ratios look like real logs.
func benchRecords(size int) []batchtest.Record {
	r := rand.New(rand.NewPCG(1, 2))
	levels := []string{"info", "warn", "error", "debug"}
	var recs []batchtest.Record
	for total := 0; total < size; {
		v := fmt.Appendf(nil, `{"ts":"2024-05-%02dT%02d:%02d:%02d.%03dZ","level":"%s","host":"web-%03d","req":"%016x","path":"/api/v1/items/%d","status":%d,"ms":%d,"msg":"`,
			1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000), levels[r.IntN(4)], r.IntN(200), r.Uint64(), r.IntN(100000), 200+r.IntN(300), r.IntN(5000))
		for len(v) < 1024-2 {
			v = append(v, benchWords[r.IntN(len(benchWords))]...)
			v = append(v, ' ')
		}
		v = v[:1024-2]
		v = append(v, `"}`...)
		recs = append(recs, batchtest.Record{Value: v, Timestamp: 1_700_000_000_000 + int64(len(recs))})
		total += len(v)
	}
	return recs
}

var benchWords = []string{"request", "served", "upstream", "timeout", "connection", "reset", "by", "peer",
	"user", "login", "failed", "succeeded", "cache", "miss", "hit", "for", "key", "session", "expired", "retrying",
	"in", "ms", "GET", "POST", "database", "query", "took", "rows", "returned", "slow", "handler", "panic",
	"recovered", "shard", "rebalanced", "worker", "started", "stopped", "queue", "depth", "is", "now"}

type benchCase struct {
	name  string
	magic int8
	data  []byte
	raw   int // uncompressed record bytes
}

func benchCases(b *testing.B) []benchCase {
	recs := benchRecords(1 << 20)
	raw := 0
	for _, r := range recs {
		raw += len(r.Value)
	}
	var cs []benchCase
	for _, c := range batchtest.Codecs {
		if c.Name == "snappy-xerial" {
			continue
		}
		cs = append(cs, benchCase{"v2-" + c.Name, 2, batchtest.RecordBatch(b, recs, c, nil), raw})
	}
	v1 := messageSet(b, 1, recs, batchtest.Gzip, 0)
	cs = append(cs, benchCase{"v1-gzip", 1, v1, raw})
	// The same wrapper at offset 0, as sarama and librdkafka write it:
	// opened on the ack path (wrappercount.go).
	at0 := append([]byte{}, v1...)
	clear(at0[:8])
	cs = append(cs, benchCase{"v1-gzip-offset0", 1, at0, raw})
	return cs
}

// BenchmarkValidate measures the ack path; throughput is in wire bytes.
// v1-gzip is a wrapper counted by its offset (Java, franz-go), v1-gzip-offset0
// one that is decompressed to be counted (sarama, librdkafka).
func BenchmarkValidate(b *testing.B) {
	for _, c := range benchCases(b) {
		if c.name != "v2-none" && c.name != "v2-gzip" && c.name != "v1-gzip" && c.name != "v1-gzip-offset0" {
			continue // v2 codecs all cost the same: a CRC
		}
		b.Run(c.name, func(b *testing.B) {
			opt := ValidateOptions{ProduceVersion: 9, MaxBytes: 2 << 20}
			if c.magic < 2 {
				opt.ProduceVersion = 2
			}
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Validate(c.data, opt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode measures delivery; throughput is in decoded record bytes.
func BenchmarkDecode(b *testing.B) {
	for _, c := range benchCases(b) {
		b.Run(c.name, func(b *testing.B) {
			var d Decoder
			n := 0
			fn := func(r *Record) error { n += len(r.Value); return nil }
			b.SetBytes(int64(c.raw))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Decode(c.magic, c.data, DecodeOptions{}, fn); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(c.data)), "wire-bytes")
		})
	}
}
