//go:build unix

package shardwriter

import (
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/aliyun/aliyun-log-go-sdk/producer"
	"github.com/go-kit/kit/log"
	"github.com/gogo/protobuf/proto"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// BenchmarkWriterVsSDKProducer delivers the same logs to the same SLS
// stand-in two ways, in one run:
//
//   - writer: the shardwriter Service alone. The logs are stored first (not
//     timed) in a real WAL as the RecordBatches of 500 records a Beats
//     shipper sends, spread over 2 or 4 streams (partitions of
//     test-logstore-2, 4 shards); the timed part starts the Service and ends
//     when the stand-in has accepted every log. It covers reading the WAL,
//     decompression, decoding, LogGroup encoding, lz4 and PutLogs. The
//     batches are gzip-compressed (Beats' default), or, for a like-for-like
//     comparison with the producer, which is handed the lines as they are,
//     uncompressed ("none").
//   - sdk-producer: aliyun-log-go-sdk's own producer package, fed the same
//     lines as *sls.Log (field content, the same __time__) with SendLog from
//     2 goroutines, then SafeClose; timed from NewProducer until the
//     stand-in has accepted every log. It runs with the SDK's default
//     LogGroup size (512 KiB) and with the writer's (4 MiB, 4096 logs).
//
// Both use the stand-in's own *http.Client (the producer takes one in
// ProducerConfig.HTTPClient), the same AccessKey, lz4, topic and source.
// The stand-in runs with its per-shard quota off, and the writer with its
// pacing to that quota off, so the figures are the clients'. The stand-in
// keeps at most 64 MiB of what it received, so memory stays bounded
// however long the run; completion is counted from its PutLogs counter.
//
// Reported: MB/s of raw log bytes (the record values, 1 KiB each; MB =
// 1e6 bytes, as Go's MB/s), and the process CPU time (user+sys, getrusage)
// spent in the timed part, per MB (cpu-ms/MB) and as MB per CPU-second
// (MB/cpu-s). The stand-in runs in its own process by default, so these
// are the clients' alone; with -writerbench.standin=inprocess its CPU (HTTP
// server, lz4 decompression, protobuf scan) is part of both figures, and
// only their ratio compares the clients. On a shared machine
// MB/s varies with the neighbours' load; the CPU figures hold.
// gc-cpu-ms/MB is the garbage collector's share of cpu-ms/MB (runtime/metrics'
// estimate, updated when a collection ends): near 0 when no collection ends
// in the timed part, as the benchmark's own input keeps the heap large.
// alloc-B/B is the bytes allocated on the heap per raw byte of logs: what
// garbage collection will cost where it runs. wire-% is
// the lz4 body size as a share of the raw LogGroup, puts/op the PutLogs
// per iteration.
//
//	go test -run '^$' -bench WriterVsSDKProducer -benchtime 3x ./shardwriter/
//
// -writerbench.mb (after -args) sets the raw MiB per iteration (default
// 200); -writerbench.standin where the stand-in runs (bench_standin_test.go:
// by default in its own process, so that cpu-ms/MB is the client's alone,
// and the stand-in's is standin-cpu-ms/MB). writer-sdkput is the writer
// with PutLogs sent by the SDK (PostRawLogWithCompressType), as before
// putlogs.go, for a side-by-side comparison.
func BenchmarkWriterVsSDKProducer(b *testing.B) {
	in := wbPrepare(b, *wbMiB<<20)
	b.Run("writer", func(b *testing.B) {
		for _, c := range []struct {
			input   string
			batches [][]byte
			codec   int8
			streams []int
		}{
			{"gzip", in.gzipped, 1, []int{2, 4}},
			{"none", in.plain, 0, []int{2}},
		} {
			b.Run(c.input, func(b *testing.B) {
				for _, streams := range c.streams {
					b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) { wbRunWriter(b, in, c.batches, c.codec, streams) })
				}
			})
		}
	})
	// The writer as it was before putlogs.go: lz4 and PutLogs by the SDK's
	// PostRawLogWithCompressType.
	b.Run("writer-sdkput", func(b *testing.B) {
		viaSDK := func(o *Options) { o.putViaSDK = true }
		b.Run("gzip/streams=2", func(b *testing.B) { wbRunWriterFrom(b, in, in.gzipped, 1, 2, 1, viaSDK) })
		b.Run("none/streams=2", func(b *testing.B) { wbRunWriterFrom(b, in, in.plain, 0, 2, 1, viaSDK) })
	})
	b.Run("sdk-producer", func(b *testing.B) {
		b.Run("batch=512KiB", func(b *testing.B) { wbRunProducer(b, in, 0, 0) })
		b.Run("batch=4MiB", func(b *testing.B) { wbRunProducer(b, in, lgDefaultMaxBytes, lgDefaultMaxLogs) })
	})
}

var wbMiB = flag.Int("writerbench.mb", 200, "raw MiB of logs per iteration of BenchmarkWriterVsSDKProducer")

const (
	wbProject    = "test-project-1"
	wbLogstore   = "test-logstore-2" // 4 shards in slsfake.DefaultConfig
	wbLineSize   = 1024
	wbPerBatch   = 500 // records per stored RecordBatch
	wbSenders    = 2   // goroutines calling the producer's SendLog
	wbMaxWait    = 5 * time.Minute
	wbStoredCap  = 64 << 20
	wbWriterLing = 5 * time.Millisecond
)

var wbCred = wal.Credential{AccessKeyID: "demo-akid", AccessKeySecret: "demo-aksecret"}

// wbInput is one iteration's logs, as lines and as stored batches.
type wbInput struct {
	lines   []wbLine
	gzipped [][]byte // wbPerBatch lines each, in order, gzip-compressed
	plain   [][]byte // the same, uncompressed
	raw     int64    // bytes of record values
	index   map[string]int
	source  string // __source__ of both clients: the shipper's IP, as the writer records it
}

func wbPrepare(b *testing.B, rawBytes int) *wbInput {
	n := max(rawBytes/wbLineSize/wbPerBatch, 4) * wbPerBatch
	// Timestamps in the recent past, so that both clients send them as
	// __time__ (the writer would replace a timestamp outside SLS's window).
	in := &wbInput{lines: wbLines(n, wbLineSize, time.Now().Add(-time.Hour), 1)}
	in.index = make(map[string]int, n)
	for i, l := range in.lines {
		in.raw += int64(len(l.value))
		in.index[l.value] = i
	}
	for i := 0; i < n; i += wbPerBatch {
		in.gzipped = append(in.gzipped, wbBatch(b, in.lines[i:i+wbPerBatch], true))
		in.plain = append(in.plain, wbBatch(b, in.lines[i:i+wbPerBatch], false))
	}
	// The batches decode back to the lines.
	var d batch.Decoder
	for _, data := range [][]byte{in.gzipped[1], in.plain[1]} {
		i := 0
		err := d.Decode(2, data, batch.DecodeOptions{}, func(r *batch.Record) error {
			if l := in.lines[wbPerBatch+i]; string(r.Value) != l.value || r.Timestamp != l.ts {
				return fmt.Errorf("record %d decodes to %.40q at %d", i, r.Value, r.Timestamp)
			}
			i++
			return nil
		})
		if err != nil || i != wbPerBatch {
			b.Fatalf("second batch: %d records, %v", i, err)
		}
	}
	in.source = wbProducerIP(0)
	return in
}

// wbCPU returns the CPU time (user+sys) the process has used.
func wbCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// wbGCCPU returns the runtime's estimate of the CPU time its garbage
// collector has used, in seconds.
func wbGCCPU() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64()
}

// wbAllocated returns the bytes allocated on the heap so far.
func wbAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// wbWait waits until the stand-in has accepted want logs in all.
func wbWait(b *testing.B, s wbServer, want int64, what func() string) {
	deadline := time.Now().Add(wbMaxWait)
	for s.Stats().PutLogs < want {
		if time.Now().After(deadline) {
			st := s.Stats()
			b.Fatalf("after %v the stand-in accepted %d logs, want %d (errors %d; %s)", wbMaxWait, st.PutLogs, want, st.Errors, what())
		}
		time.Sleep(time.Millisecond)
	}
}

// wbMeter adds up the timed parts of the iterations.
type wbMeter struct {
	cpu, standIn time.Duration
	gc           float64 // CPU seconds of the garbage collector (runtime/metrics' estimate)
	alloc        uint64  // bytes allocated on the heap
	iters        int
	puts         int64
	wire, rawPB  int64
}

func (m *wbMeter) start(b *testing.B, s wbServer) (slsfake.Stats, time.Duration) {
	runtime.GC() // not the previous iteration's garbage
	st := s.Stats()
	m.standIn -= s.cpu(b)
	m.gc -= wbGCCPU()
	m.alloc -= wbAllocated()
	cpu := wbCPU(b)
	b.StartTimer()
	return st, cpu
}

func (m *wbMeter) stop(b *testing.B, s wbServer, before slsfake.Stats, cpu0 time.Duration, in *wbInput) {
	b.StopTimer()
	m.cpu += wbCPU(b) - cpu0
	m.standIn += s.cpu(b)
	m.gc += wbGCCPU()
	m.alloc += wbAllocated()
	m.iters++
	after := s.Stats()
	if n := after.PutLogs - before.PutLogs; n != int64(len(in.lines)) {
		b.Fatalf("the stand-in accepted %d logs in this iteration, want %d", n, len(in.lines))
	}
	if after.Errors != before.Errors {
		b.Fatalf("the stand-in answered %d errors", after.Errors-before.Errors)
	}
	m.puts += after.Requests[slsfake.OpPutLogs] - before.Requests[slsfake.OpPutLogs]
	m.wire += after.PutWireBytes - before.PutWireBytes
	m.rawPB += after.PutRawBytes - before.PutRawBytes
}

func (m *wbMeter) report(b *testing.B, in *wbInput) {
	if m.iters == 0 || m.cpu <= 0 {
		return
	}
	mb := float64(in.raw) * float64(m.iters) / 1e6
	b.ReportMetric(m.cpu.Seconds()*1e3/mb, "cpu-ms/MB")
	b.ReportMetric(mb/m.cpu.Seconds(), "MB/cpu-s")
	b.ReportMetric(100*float64(m.wire)/float64(m.rawPB), "wire-%")
	b.ReportMetric(float64(m.puts)/float64(m.iters), "puts/op")
	b.ReportMetric(m.gc*1e3/mb, "gc-cpu-ms/MB")
	b.ReportMetric(float64(m.alloc)/(mb*1e6), "alloc-B/B")
	if m.standIn > 0 {
		b.ReportMetric(m.standIn.Seconds()*1e3/mb, "standin-cpu-ms/MB")
	}
}

// wbCheckStored checks what the stand-in kept (the last 64 MiB): every log
// is one of the lines, as field content, with its time, source and topic.
func wbCheckStored(b *testing.B, s wbServer, in *wbInput) {
	wbCheckStoredFrom(b, s, in, 1)
}

// wbCheckStoredFrom is wbCheckStored for batches from producers shippers
// (wbAppend): a log's source is one of theirs.
func wbCheckStoredFrom(b *testing.B, s wbServer, in *wbInput, producers int) {
	logs := s.Logs(wbProject, wbLogstore)
	if len(logs) == 0 {
		b.Fatal("the stand-in kept no log")
	}
	for _, l := range logs {
		if len(l.Contents) != 1 || l.Contents[0].Key != "content" {
			b.Fatalf("stored log with contents %v", l.Contents)
		}
		i, ok := in.index[l.Contents[0].Value]
		if !ok {
			b.Fatalf("stored log is none of the lines: %.80q", l.Contents[0].Value)
		}
		if ts := in.lines[i].ts; int64(l.Time) != ts/1000 || (l.HasTimeNs && int64(l.TimeNs) != ts%1000*1e6) {
			b.Fatalf("line %d stored at %d.%09d, want its timestamp %d ms", i, l.Time, l.TimeNs, ts)
		}
		known := false
		for p := range producers {
			known = known || l.Source == wbProducerIP(p)
		}
		if !known || l.Topic != "" {
			b.Fatalf("stored with topic %q source %q", l.Topic, l.Source)
		}
	}
}

func wbRunWriter(b *testing.B, in *wbInput, batches [][]byte, codec int8, streams int) {
	wbRunWriterFrom(b, in, batches, codec, streams, 1, nil)
}

// wbRunWriterFrom is wbRunWriter for batches from producers shippers
// (wbAppend), with the writer's options changed by mod (then what is
// stored is not checked).
func wbRunWriterFrom(b *testing.B, in *wbInput, batches [][]byte, codec int8, streams, producers int, mod func(*Options)) {
	s := wbStandIn(b)
	hc := s.HTTPClient()
	key := make([]byte, wal.KeySize)
	rand.Read(key)
	w, err := wal.Open(b.TempDir(), wal.Options{EncryptionKey: key})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	logger := slog.New(slog.DiscardHandler)
	b.SetBytes(in.raw)
	b.StopTimer()
	b.ResetTimer()
	var m wbMeter
	for i := 0; i < b.N; i++ {
		wbAppend(b, w, batches, codec, streams, producers)
		before, cpu0 := m.start(b, s)
		opts := Options{
			Endpoint: "http://" + s.Endpoint(), HTTPClient: hc, Linger: wbWriterLing, Logger: logger,
			// Pacing to SLS's per-shard quota off, as the stand-in's quota.
			ShardBytesPerSec: -1, ShardRequestsPerSec: -1,
		}
		if mod != nil {
			mod(&opts)
		}
		svc, err := New(w, opts)
		if err != nil {
			b.Fatal(err)
		}
		svc.Start()
		want := before.PutLogs + int64(len(in.lines))
		wbWait(b, s, want, func() string {
			st := svc.Stats()
			return fmt.Sprintf("writer: %d logs, %d retries, %d dead letters", st.Logs.Load(), st.Retries.Load(), st.DeadLetters.Load())
		})
		m.stop(b, s, before, cpu0, in)
		if err := svc.Close(); err != nil {
			b.Fatal(err)
		}
		if st := svc.Stats(); st.Retries.Load() != 0 || st.DeadLetters.Load() != 0 {
			b.Fatalf("writer: %d retries, %d dead letters", st.Retries.Load(), st.DeadLetters.Load())
		}
		if i == 0 && mod == nil {
			wbCheckStoredFrom(b, s, in, producers)
		}
	}
	// Close committed every position: nothing is delivered twice.
	if st := s.Stats(); st.PutLogs != int64(b.N*len(in.lines)) {
		b.Fatalf("the stand-in accepted %d logs over %d iterations of %d", st.PutLogs, b.N, len(in.lines))
	}
	m.report(b, in)
}

// wbProducerIP is the IP of shipper p of the benchmarks.
func wbProducerIP(p int) string { return fmt.Sprintf("10.0.0.%d", 7+p) }

// wbAppend stores one iteration's batches, batch i in partition
// i%streams from shipper i%producers (its own address and client.id), and
// waits until all are stored.
func wbAppend(b *testing.B, w *wal.WAL, batches [][]byte, codec int8, streams, producers int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i, data := range batches {
		k := wal.StreamKey{Project: wbProject, Logstore: wbLogstore, Partition: int32(i % streams)}
		e := &wal.Entry{
			Magic: 2, Codec: codec, Records: wbPerBatch, ReceivedAt: time.Now().UnixNano(),
			Producer: wbProducerIP(i%producers) + ":53412", ClientID: fmt.Sprint("beats-", i%producers), Credential: wbCred, Data: data,
		}
		wg.Add(1)
		w.Append(k, e, false, func(_ int64, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if first != nil {
		b.Fatalf("cannot store the benchmark batches: %v", first)
	}
}

func wbRunProducer(b *testing.B, in *wbInput, maxBatchBytes int64, maxBatchCount int) {
	s := wbStandIn(b)
	hc := s.HTTPClient()
	contentKey := "content"
	b.SetBytes(in.raw)
	b.StopTimer()
	b.ResetTimer()
	var m wbMeter
	for i := 0; i < b.N; i++ {
		before, cpu0 := m.start(b, s)
		cfg := producer.GetDefaultProducerConfig()
		cfg.Endpoint = s.Endpoint()
		cfg.AccessKeyID, cfg.AccessKeySecret = wbCred.AccessKeyID, wbCred.AccessKeySecret
		cfg.HTTPClient = hc
		cfg.CompressType = sls.Compress_LZ4
		cfg.LingerMs = 100 // the least it takes; lower is reset to 2000
		if maxBatchBytes > 0 {
			cfg.MaxBatchSize, cfg.MaxBatchCount = maxBatchBytes, maxBatchCount
		}
		cfg.Logger = log.NewNopLogger()
		cfg.DisableRuntimeMetrics = true
		if cvtRaceEnabled {
			// The SDK's Client.initHttpClient fills in its defaults on the
			// first requests under a read lock only, a data race between
			// the producer's concurrent senders (an SDK bug, harmless).
			// Under -race, where the figures mean nothing, send one at a
			// time.
			cfg.MaxIoWorkerCount = 1
		}
		p, err := producer.NewProducer(cfg)
		if err != nil {
			b.Fatal(err)
		}
		p.Start()
		var wg sync.WaitGroup
		errs := make(chan error, wbSenders)
		per := (len(in.lines) + wbSenders - 1) / wbSenders
		for g := range wbSenders {
			wg.Add(1)
			go func(lines []wbLine) {
				defer wg.Done()
				for j := range lines {
					l := &lines[j]
					lg := &sls.Log{
						Time:     proto.Uint32(uint32(l.ts / 1000)),
						TimeNs:   proto.Uint32(uint32(l.ts%1000) * 1e6),
						Contents: []*sls.LogContent{{Key: &contentKey, Value: &l.value}},
					}
					if err := p.SendLog(wbProject, wbLogstore, "", in.source, lg); err != nil {
						errs <- err
						return
					}
				}
			}(in.lines[g*per : min((g+1)*per, len(in.lines))])
		}
		wg.Wait()
		p.SafeClose()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatalf("SendLog: %v", err)
		}
		wbWait(b, s, before.PutLogs+int64(len(in.lines)), func() string { return "producer closed" })
		m.stop(b, s, before, cpu0, in)
		if i == 0 {
			wbCheckStored(b, s, in)
		}
	}
	m.report(b, in)
}

// BenchmarkWakeLatency measures how long a goroutine that becomes runnable
// waits for a P while writers deliver a backlog (4 streams, gzip) to the
// stand-in: a probe sleeps 1 ms in a loop and records how late it wakes,
// as an event loop back from epoll or the WAL's committer back from
// fdatasync would wait. With the CPU slots and the yield
// (cpuslots.go) and without.
//
//	go test -run '^$' -bench WakeLatency -benchtime 1x -args -writerbench.mb 50 ./shardwriter/
func BenchmarkWakeLatency(b *testing.B) {
	in := wbPrepare(b, *wbMiB<<20)
	for _, yield := range []bool{false, true} {
		b.Run(fmt.Sprintf("yield=%v", yield), func(b *testing.B) {
			defer func(y bool) { cpuYield = y }(cpuYield)
			cpuYield = yield
			stop := make(chan struct{})
			lates := make(chan []time.Duration, 1)
			go func() {
				var late []time.Duration
				for {
					select {
					case <-stop:
						lates <- late
						return
					default:
					}
					t0 := time.Now()
					time.Sleep(time.Millisecond)
					late = append(late, time.Since(t0)-time.Millisecond)
				}
			}()
			wbRunWriterFrom(b, in, in.gzipped, 1, 4, 1, nil)
			close(stop)
			late := <-lates
			slices.Sort(late)
			q := func(p float64) float64 { return float64(late[int(p*float64(len(late)-1))]) / 1e6 }
			b.ReportMetric(q(0.5), "late-p50-ms")
			b.ReportMetric(q(0.99), "late-p99-ms")
			b.ReportMetric(q(0.999), "late-p99.9-ms")
		})
	}
}
