//go:build linux

package shardwriter

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"io"
	"runtime"
	"syscall"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// BenchmarkStages measures, each alone on one goroutine, the stages a log
// passes from the WAL to PutLogs: the floor of what the writer can cost on
// this machine. Every stage counts MB of raw logs (the record values, 1e6
// bytes), as BenchmarkWriterVsSDKProducer does, so the figures add up: a
// stage that works on fewer bytes (MD5 of the lz4 body) is cheaper per MB
// of logs. cpu-ms/MB is the CPU time of the benchmark's thread per raw MB
// (getrusage RUSAGE_THREAD): one goroutine locked to its thread, so it
// holds on a busy machine where MB/s does not. Garbage collection runs on
// other threads and is not counted; only lz4-sdk-style allocates.
//
// The logs are the writer benchmark's 1 KiB lines (benchdata_test.go), 500
// per Kafka batch as Beats sends them, and for JSON expansion Beats' JSON
// documents (convert_bench_test.go). A LogGroup is the writer's 4 MiB.
//
//	go test -run '^$' -bench Stages ./shardwriter/
func BenchmarkStages(b *testing.B) {
	sd := stPrepare(b)
	f := func(name string, raw int64, op func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			// The thread's own CPU time, so that the figure holds when
			// neighbours take the cores (wall time, ns/op and MB/s, does
			// not).
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.SetBytes(raw)
			b.ReportAllocs()
			cpu0 := stThreadCPU(b)
			for b.Loop() {
				op(b)
			}
			cpu := stThreadCPU(b) - cpu0
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/(float64(raw)/1e6)/1e6, "cpu-ms/MB")
		})
	}

	// One copy of the batch out of the WAL: what reading it costs at least.
	dst := make([]byte, len(sd.plain))
	f("wal-copy", sd.batchRaw, func(*testing.B) { copy(dst, sd.plain) })

	// gunzip of one batch's records with klauspost's decoder, reused, into
	// a reused buffer: the decompressor wal/batch runs (compression.go).
	var zr gzip.Reader
	var src bytes.Reader
	out := bytes.NewBuffer(make([]byte, 0, 2*len(sd.plain)))
	f("gunzip", sd.batchRaw, func(b *testing.B) {
		src.Reset(sd.gzipped)
		if err := zr.Reset(&src); err != nil {
			b.Fatal(err)
		}
		out.Reset()
		if _, err := io.Copy(out, &zr); err != nil {
			b.Fatal(err)
		}
	})

	// Kafka record decoding of an uncompressed batch (CRC included).
	var d batch.Decoder
	f("kafka-decode", sd.batchRaw, func(b *testing.B) {
		if err := d.Decode(2, sd.plain, batch.DecodeOptions{}, func(*batch.Record) error { return nil }); err != nil {
			b.Fatal(err)
		}
	})

	// Record → Log: decoding, fields, sanitizing, time check, protobuf
	// framing into the LogGroup (Converter.Convert), on text lines and on
	// Beats' JSON documents (expanded into fields).
	c := NewConverter(ConvertOptions{})
	g := NewLogGroupBuilder(LogGroupLimits{})
	convert := func(e *wal.Entry) func(b *testing.B) {
		return func(b *testing.B) {
			g.Reset()
			if _, err := c.Convert(g, e, time.Now(), nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	f("convert-text", sd.batchRaw, convert(sd.textEntry))
	f("convert-json", sd.jsonRaw, convert(sd.jsonEntry))

	// JSON expansion alone (jsonfields.go), on the same documents.
	var j jsExpander
	var fs []cvField
	var scratch []byte
	f("json-expand", sd.jsonRaw, func(b *testing.B) {
		for _, v := range sd.jsonValues {
			var ok bool
			if fs, scratch, ok = j.expand(fs[:0], scratch[:0], v); !ok {
				b.Fatal("not expanded")
			}
		}
	})

	// Protobuf framing alone: appending the Logs of the lines, already
	// split into fields, to a LogGroup.
	fields := make([][]cvField, len(sd.lines))
	for i, l := range sd.lines {
		fields[i] = []cvField{{cvContentKey, l}}
	}
	f("protobuf-framing", sd.batchRaw, func(*testing.B) {
		g.Reset()
		for i, fs := range fields {
			g.appendLog(lgLogBodySize(1700000000, fs), 1700000000, uint32(i), fs, logRef{})
		}
	})

	// lz4 of a 4 MiB LogGroup: pierrec/lz4 with its Compressor and buffer
	// reused (lz4block.go), and as the SDK calls it (log_store.go
	// PostRawLogs: a new buffer each request). wire-% is the block's size
	// as a share of the LogGroup.
	var lze lz4Encoder
	lzOut := make([]byte, lz4.CompressBlockBound(len(sd.group)))
	f("lz4", sd.groupRaw, func(b *testing.B) {
		lzOut = lze.compress(lzOut[:0], sd.group)
		b.ReportMetric(100*float64(len(lzOut))/float64(len(sd.group)), "wire-%")
	})
	f("lz4-sdk-style", sd.groupRaw, func(b *testing.B) {
		if _, err := lz4.CompressBlock(sd.group, make([]byte, lz4.CompressBlockBound(len(sd.group))), nil); err != nil {
			b.Fatal(err)
		}
	})

	// zstd of the same LogGroup, as the SDK compresses it for
	// sls.compression: zstd (compressor.go: klauspost's encoder at
	// SpeedFastest, EncodeAll), with one encoder reused; wire-% as for lz4.
	zse, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	var zsOut []byte
	f("zstd-fastest", sd.groupRaw, func(b *testing.B) {
		zsOut = zse.EncodeAll(sd.group, zsOut[:0])
		b.ReportMetric(100*float64(len(zsOut))/float64(len(sd.group)), "wire-%")
	})

	// MD5 of the lz4 body (Content-MD5, which SLS checks).
	f("md5-of-lz4-body", sd.groupRaw, func(*testing.B) { md5.Sum(sd.wire) })
	// SHA-256 of the lz4 body: signature v4 signs it (x-log-content-sha256,
	// signature_v4.go in the SDK).
	f("sha256-of-lz4-body", sd.groupRaw, func(*testing.B) { sha256.Sum256(sd.wire) })

	// Signing a PutLogs request, the body's MD5 aside (Content-MD5 given):
	// the SDK's signers, per request of one 4 MiB LogGroup.
	v1 := sls.NewSignerV1("demo-akid", "demo-aksecret")
	v4 := sls.NewSignerV4("demo-akid", "demo-aksecret", "cn-hangzhou")
	uri := "/logstores/test-logstore-2/shards/route?key=00000000000000000000000000000000"
	sign := func(s interface {
		Sign(method, uri string, headers map[string]string, body []byte) error
	}) func(b *testing.B) {
		return func(b *testing.B) {
			h := map[string]string{
				"x-log-compresstype": "lz4", "x-log-bodyrawsize": "4194304", "Content-Type": "application/x-protobuf",
				"Content-MD5": "0123456789ABCDEF0123456789ABCDEF", "x-log-apiversion": "0.6.0",
				"Date": "Thu, 03 Dec 2026 07:00:00 GMT", "x-log-date": "20261203T070000Z", "Host": "test-project-1.127.0.0.1",
			}
			if err := s.Sign("POST", uri, h, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	f("sign-v1", sd.groupRaw, sign(v1))
	f("sign-v4", sd.groupRaw, sign(v4))
}

// stThreadCPU returns the CPU time (user+system) of the calling thread.
func stThreadCPU(b *testing.B) time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stData is BenchmarkStages' input.
type stData struct {
	lines          [][]byte // one batch's record values
	plain, gzipped []byte   // that batch: uncompressed; its records gzip-compressed
	batchRaw       int64    // raw bytes of one batch
	textEntry      *wal.Entry
	jsonEntry      *wal.Entry
	jsonValues     [][]byte
	jsonRaw        int64
	group, wire    []byte // a 4 MiB LogGroup of the lines; its lz4 block
	groupRaw       int64  // raw bytes in group
}

func stPrepare(b *testing.B) *stData {
	sd := &stData{}
	lines := wbLines(wbPerBatch, wbLineSize, time.Now().Add(-time.Hour), 1)
	recs := make([]batchtest.Record, len(lines))
	for i, l := range lines {
		recs[i] = batchtest.Record{Value: []byte(l.value), Timestamp: l.ts}
		sd.lines = append(sd.lines, recs[i].Value)
		sd.batchRaw += int64(len(l.value))
	}
	sd.plain = batchtest.RecordBatch(b, recs, batchtest.None, nil)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(batchtest.EncodeRecords(recs, 0))
	zw.Close()
	sd.gzipped = zb.Bytes()
	sd.textEntry = &wal.Entry{Magic: 2, Records: int32(len(recs)), ReceivedAt: time.Now().UnixNano(), Data: sd.plain}

	jrecs := cvtBeatsRecords(wbPerBatch)
	for _, r := range jrecs {
		sd.jsonValues = append(sd.jsonValues, r.Value)
		sd.jsonRaw += int64(len(r.Value))
		r.Timestamp = time.Now().UnixMilli()
	}
	sd.jsonEntry = &wal.Entry{Magic: 2, Records: int32(len(jrecs)), ReceivedAt: time.Now().UnixNano(), JSON: true,
		Data: batchtest.RecordBatch(b, jrecs, batchtest.None, nil)}

	// A full LogGroup of more lines (the same generator, 4096 logs).
	g := NewLogGroupBuilder(LogGroupLimits{})
	for i, l := range wbLines(lgDefaultMaxLogs, wbLineSize, time.Now().Add(-time.Hour), 2) {
		fs := []cvField{{cvContentKey, []byte(l.value)}}
		body := lgLogBodySize(uint32(l.ts/1000), fs)
		if !g.fits(lgLogSize(body)) {
			break
		}
		g.appendLog(body, uint32(l.ts/1000), uint32(i), fs, logRef{})
		sd.groupRaw += int64(len(l.value))
	}
	sd.group = g.Bytes("", "10.0.0.7", nil)
	sd.wire = make([]byte, lz4.CompressBlockBound(len(sd.group)))
	n, err := lz4.CompressBlock(sd.group, sd.wire, nil)
	if err != nil || n == 0 {
		b.Fatalf("lz4: %d, %v", n, err)
	}
	sd.wire = sd.wire[:n]
	return sd
}
