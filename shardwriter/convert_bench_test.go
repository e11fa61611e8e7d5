package shardwriter

import (
	"fmt"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// The benchmarks convert the batches shippers send most: 1 KiB text lines
// in a 1 MB v2 batch, gzip (Beats' default) or uncompressed, and Beats'
// JSON documents (~1 KiB, 17 top-level keys, 8 of them nested objects). Bytes per
// second count raw record values.
//
// BenchmarkConvertSDKMarshal does the same conversion the SDK way — an
// sls.Log and sls.LogContent per log, proto.Marshal of the sls.LogGroup —
// with the same decoder and JSON scanner, so that the two differ only in
// how the LogGroup is encoded.

// cvtTextRecords returns n access-log lines of about 1 KiB.
func cvtTextRecords(n int) []batchtest.Record {
	recs := make([]batchtest.Record, n)
	base := cvtNow.Add(-time.Minute).UnixMilli()
	for i := range recs {
		line := fmt.Sprintf(`10.%d.%d.%d - - [14/Nov/2023:22:13:%02d +0000] "GET /api/v1/items/%d?page=%d HTTP/1.1" %d %d "https://example.com/p/%d" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.%d.%d Safari/537.36" rt=%d.%03d uct=0.%03d `,
			i%256, i*7%256, i*13%256, i%60, i*7919%100000, i%17, []int{200, 200, 200, 304, 404, 500}[i%6], i*31%50000, i, i%7000, i%200, i%3, i*37%1000, i*11%1000)
		for len(line) < 1024 {
			line += fmt.Sprintf("k%d=%x ", len(line), uint32(i*2654435761+len(line)))
		}
		recs[i] = batchtest.Record{Value: []byte(line[:1024]), Timestamp: base + int64(i)}
	}
	return recs
}

// cvtBeatsRecords returns n JSON documents shaped like Filebeat's output.
func cvtBeatsRecords(n int) []batchtest.Record {
	recs := make([]batchtest.Record, n)
	base := cvtNow.Add(-time.Minute).UnixMilli()
	for i := range recs {
		doc := fmt.Sprintf(`{"@timestamp":"2023-11-14T22:13:%02d.%03dZ","@metadata":{"beat":"filebeat","type":"_doc","version":"8.11.1"},`+
			`"message":"10.%d.%d.%d - - [14/Nov/2023:22:13:%02d +0000] \"GET /api/v1/items/%d HTTP/1.1\" %d %d \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"",`+
			`"log":{"offset":%d,"file":{"path":"/var/log/nginx/access.log","inode":"%d","device_id":"64769"}},"input":{"type":"filestream"},`+
			`"ecs":{"version":"8.0.0"},"host":{"name":"web-%02d","hostname":"web-%02d","architecture":"x86_64","os":{"platform":"ubuntu","version":"22.04.3 LTS (Jammy Jellyfish)","family":"debian","name":"Ubuntu","kernel":"5.15.0-88-generic","type":"linux"},"ip":["10.0.%d.%d","fe80::216:3eff:fe%02x:%04x"],"mac":["00-16-3E-%02X-%02X-%02X"]},`+
			`"agent":{"type":"filebeat","version":"8.11.1","ephemeral_id":"%08x-1f2e-4d3c-9b8a-%012x","id":"5d0c4f2a-7b6e-4f1d-8c3b-2a1e0f9d8c7b","name":"web-%02d"},`+
			`"fields":{"env":"prod","team":"platform"},"tags":["nginx","access","beats_input_codec_plain_applied"],"service":{"type":"nginx"},`+
			`"event":{"dataset":"nginx.access","module":"nginx","timezone":"+00:00"},"fileset":{"name":"access"},"level":"info","seq":%d,"sampled":%v,"ratio":%d.%02de-3}`,
			i%60, i%1000, i%256, i*7%256, i*13%256, i%60, i*7919%100000, []int{200, 304, 404}[i%3], i*31%50000,
			i*1024, 1_000_000+i%50, i%20, i%20, i%256, i*3%256, i%256, i*97%65536, i%256, i*5%256, i*9%256,
			uint32(i*2654435761), uint64(i)*0x9E3779B97F4A7C15&0xffffffffffff, i%20, i, i%2 == 0, i%10, i%100)
		recs[i] = batchtest.Record{Value: []byte(doc), Timestamp: base + int64(i)}
	}
	return recs
}

type cvtBenchCase struct {
	name string
	e    *wal.Entry
	raw  int64 // bytes of record values
}

func cvtBenchCases(b *testing.B) []cvtBenchCase {
	text := cvtTextRecords(1000) // 1000 × 1 KiB: a 1 MB batch
	beats := cvtBeatsRecords(1000)
	size := func(recs []batchtest.Record) (n int64) {
		for _, r := range recs {
			n += int64(len(r.Value))
		}
		return n
	}
	entry := func(recs []batchtest.Record, c batchtest.Codec, jsonMode bool) *wal.Entry {
		return &wal.Entry{Magic: 2, Codec: c.ID, Records: int32(len(recs)), ReceivedAt: cvtReceived, JSON: jsonMode, Data: batchtest.RecordBatch(b, recs, c, nil)}
	}
	return []cvtBenchCase{
		{"text-gzip", entry(text, batchtest.Gzip, false), size(text)},
		{"text-none", entry(text, batchtest.None, false), size(text)},
		{"json-gzip", entry(beats, batchtest.Gzip, true), size(beats)},
		{"json-none", entry(beats, batchtest.None, true), size(beats)},
	}
}

func BenchmarkConvert(b *testing.B) {
	for _, bc := range cvtBenchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			c := NewConverter(ConvertOptions{})
			g := NewLogGroupBuilder(LogGroupLimits{})
			var out int
			flush := func(g *LogGroupBuilder) error { out += len(g.Bytes("", "", nil)); return nil }
			b.SetBytes(bc.raw)
			b.ReportAllocs()
			for b.Loop() {
				g.Reset()
				if _, err := c.Convert(g, bc.e, cvtNow, flush); err != nil {
					b.Fatal(err)
				}
				out += len(g.Bytes("", "", nil))
			}
		})
	}
}

func BenchmarkConvertSDKMarshal(b *testing.B) {
	for _, bc := range cvtBenchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			var d batch.Decoder
			var j jsExpander
			var fs []cvField
			var scratch []byte
			clock := NewConverter(ConvertOptions{}).clock(cvtNow, bc.e.ReceivedAt)
			var out int
			b.SetBytes(bc.raw)
			b.ReportAllocs()
			for b.Loop() {
				var logs []*sls.Log
				err := d.Decode(bc.e.Magic, bc.e.Data, batch.DecodeOptions{}, func(r *batch.Record) error {
					sec, ns := clock.logTime(r.Timestamp)
					l := &sls.Log{Time: proto.Uint32(sec), TimeNs: proto.Uint32(ns)}
					ok := false
					if bc.e.JSON {
						fs, scratch, ok = j.expand(fs[:0], scratch[:0], r.Value)
					}
					if !ok {
						fs = append(fs[:0], cvField{cvContentKey, r.Value})
					}
					for _, f := range fs {
						l.Contents = append(l.Contents, &sls.LogContent{Key: proto.String(string(f.key)), Value: proto.String(string(f.val))})
					}
					logs = append(logs, l)
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				raw, err := proto.Marshal(&sls.LogGroup{Logs: logs})
				if err != nil {
					b.Fatal(err)
				}
				out += len(raw)
			}
		})
	}
}

// BenchmarkJSONFields compares the scanner with encoding/json (Decoder,
// UseNumber, RawMessage: cvtRefJSON) on Beats documents.
func BenchmarkJSONFields(b *testing.B) {
	docs := cvtBeatsRecords(64)
	var size int64
	for _, d := range docs {
		size += int64(len(d.Value))
	}
	b.Run("scanner", func(b *testing.B) {
		var j jsExpander
		var fs []cvField
		var scratch []byte
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for _, d := range docs {
				var ok bool
				if fs, scratch, ok = j.expand(fs[:0], scratch[:0], d.Value); !ok {
					b.Fatal("not expanded")
				}
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for _, d := range docs {
				if _, ok := cvtRefJSON(d.Value); !ok {
					b.Fatal("not expanded")
				}
			}
		}
	})
}

func TestConvertBenchRecords(t *testing.T) {
	// The benchmark inputs are what they claim to be.
	for _, r := range cvtTextRecords(50) {
		if len(r.Value) != 1024 {
			t.Fatalf("text record of %d bytes", len(r.Value))
		}
	}
	var j jsExpander
	for i, r := range cvtBeatsRecords(50) {
		got, ok := cvtExpand(&j, r.Value)
		ref, _ := cvtRefJSON(r.Value)
		if !ok || len(got) != 17 || len(r.Value) < 900 || len(r.Value) > 1200 || fmt.Sprint(got) != fmt.Sprint(ref) {
			t.Fatalf("beats doc %d: %d bytes, %d fields (%v): %s", i, len(r.Value), len(got), ok, r.Value)
		}
	}
}
