package report

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/pierrec/lz4/v4"

	"github.com/slsrelay/slsrelay/shardwriter"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// Stage is one stage of the way from the WAL to PutLogs, with its floor:
// the CPU it takes alone, on one thread of this machine, per MB of raw
// logs (record values, 1e6 bytes). The relay's CPU s/GB in the table is
// to be read against the sum of the floors of its input's stages.
type Stage struct {
	Name    string  `json:"name"`
	CPUMsMB float64 `json:"floorCpuMsPerMB"`
	Note    string  `json:"note,omitempty"`
	// Within marks a stage measured again as part of a later one (record
	// decoding, inside conversion): shown, not added to the sums.
	Within bool `json:"within,omitempty"`
}

// stageLines and stageLineSize shape the logs the floors are measured on:
// one Kafka batch of Beats-like 1 KiB text lines.
const (
	stageLines    = 500
	stageLineSize = 1024
	stageTime     = 300 * time.Millisecond // per stage
)

// MeasureStages measures the floor of each stage (what
// go test -bench Stages ./shardwriter/ measures in more detail): one copy
// of a batch out of the WAL, gunzip with klauspost's decoder (wal/batch's),
// Kafka record decoding, conversion to a LogGroup (shardwriter.Converter:
// fields, sanitizing, protobuf framing), lz4 of the LogGroup (pierrec/lz4,
// the SDK's), and MD5 of the lz4 body (Content-MD5). Each runs about
// 0.3 s, timed by the CPU time of its thread where the OS tells it (so
// that the floor holds on a busy machine), by the clock otherwise.
func MeasureStages() ([]Stage, error) {
	in, err := newStageInput()
	if err != nil {
		return nil, err
	}
	var out []Stage
	add := func(name, note string, within bool, raw int, op func() error) error {
		ms, err := stageCPUMsPerMB(raw, op)
		if err != nil {
			return fmt.Errorf("cannot measure stage %s: %w", name, err)
		}
		out = append(out, Stage{Name: name, CPUMsMB: ms, Note: note, Within: within})
		return nil
	}
	dst := make([]byte, len(in.plain))
	var zr gzip.Reader
	var src bytes.Reader
	var unz bytes.Buffer
	var dec batch.Decoder
	conv := shardwriter.NewConverter(shardwriter.ConvertOptions{})
	g := shardwriter.NewLogGroupBuilder(shardwriter.LogGroupLimits{})
	entry := &wal.Entry{Magic: 2, Records: stageLines, Data: in.plain}
	var lzc lz4.Compressor
	lzOut := make([]byte, lz4.CompressBlockBound(len(in.group)))
	var wire []byte
	for _, s := range []struct {
		name, note string
		within     bool
		raw        int
		op         func() error
	}{
		{"WAL read (one copy)", "", false, in.raw, func() error { copy(dst, in.plain); return nil }},
		{"gunzip", "gzip input only", false, in.raw, func() error {
			src.Reset(in.gzipped)
			if err := zr.Reset(&src); err != nil {
				return err
			}
			unz.Reset()
			_, err := io.Copy(&unz, &zr)
			return err
		}},
		{"Kafka record decoding", "part of the next stage", true, in.raw, func() error {
			return dec.Decode(2, in.plain, batch.DecodeOptions{}, func(*batch.Record) error { return nil })
		}},
		{"record → Log (incl. decoding)", "text lines; JSON expansion costs more", false, in.raw, func() error {
			g.Reset()
			entry.ReceivedAt = time.Now().UnixNano()
			_, err := conv.Convert(g, entry, time.Now(), nil)
			return err
		}},
		{"lz4 of the LogGroup", "", false, in.groupRaw, func() error {
			n, err := lzc.CompressBlock(in.group, lzOut)
			wire = lzOut[:n]
			return err
		}},
		{"MD5 of the lz4 body", "", false, in.groupRaw, func() error { md5.Sum(wire); return nil }},
	} {
		if err := add(s.name, s.note, s.within, s.raw, s.op); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// stageCPUMsPerMB runs op for about stageTime on a thread of its own and
// returns its CPU ms per MB of raw bytes.
func stageCPUMsPerMB(raw int, op func() error) (float64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := op(); err != nil { // warm up, and check
		return 0, err
	}
	wall0 := time.Now()
	cpu0, cpuOK := stageThreadCPU()
	n := 0
	for time.Since(wall0) < stageTime || n < 3 {
		if err := op(); err != nil {
			return 0, err
		}
		n++
	}
	spent := time.Since(wall0)
	if cpu1, ok := stageThreadCPU(); ok && cpuOK && cpu1 > cpu0 {
		spent = cpu1 - cpu0
	}
	return spent.Seconds() * 1e3 / (float64(n) * float64(raw) / 1e6), nil
}

// stageThreadCPU returns the CPU time of the calling thread
// (getrusage RUSAGE_THREAD, Linux); false where it is not known.
func stageThreadCPU() (time.Duration, bool) {
	const rusageThread = 1
	if runtime.GOOS != "linux" {
		return 0, false
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// stageInput is the logs the floors are measured on.
type stageInput struct {
	plain, gzipped []byte // one batch: uncompressed; its records gzip-compressed
	raw            int    // raw bytes of the batch
	group          []byte // a LogGroup of 4096 lines
	groupRaw       int
}

func newStageInput() (*stageInput, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	line := func(i int) []byte {
		// Text log lines with what makes them compress as in production:
		// repeated words and fields, and ids and numbers that are random.
		b := fmt.Appendf(nil, "ts=2026-12-03T07:%02d:%02d.%03dZ level=%s caller=server/http.go:%d msg=%q method=%s path=/api/v1/orders/%d status=%d latency=%dus trace_id=%016x%016x remote=10.%d.%d.%d",
			i/60%60, i%60, rng.IntN(1000), []string{"info", "info", "warn", "error"}[rng.IntN(4)], 20+rng.IntN(400),
			[]string{"order placed", "payment authorized", "cart updated", "slow query"}[rng.IntN(4)],
			[]string{"GET", "POST", "PUT"}[rng.IntN(3)], rng.IntN(2_000_000), []int{200, 200, 304, 404, 500}[rng.IntN(5)],
			rng.IntN(500_000), rng.Uint64(), rng.Uint64(), rng.IntN(256), rng.IntN(256), rng.IntN(256))
		for len(b) < stageLineSize {
			b = fmt.Appendf(b, " k%d=%d", rng.IntN(20), rng.IntN(100_000))
		}
		return b[:stageLineSize]
	}
	now := time.Now().UnixMilli()
	recs := make([]batchtest.Record, stageLines)
	in := &stageInput{}
	for i := range recs {
		recs[i] = batchtest.Record{Value: line(i), Timestamp: now}
		in.raw += len(recs[i].Value)
	}
	in.plain = batchtest.UncompressedRecordBatch(recs, nil)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	if _, err := zw.Write(batchtest.EncodeRecords(recs, now)); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	in.gzipped = zb.Bytes()

	// A full LogGroup: converted batches of more lines, until it is full.
	conv := shardwriter.NewConverter(shardwriter.ConvertOptions{})
	g := shardwriter.NewLogGroupBuilder(shardwriter.LogGroupLimits{})
	for !g.Full() {
		for i := range recs {
			recs[i].Value = line(i)
		}
		e := &wal.Entry{Magic: 2, Records: stageLines, ReceivedAt: time.Now().UnixNano(), Data: batchtest.UncompressedRecordBatch(recs, nil)}
		full := false
		if _, err := conv.Convert(g, e, time.Now(), func(*shardwriter.LogGroupBuilder) error { full = true; return errStageGroupFull }); err != nil && !full {
			return nil, err
		}
		if full {
			break
		}
	}
	in.group = g.Bytes("", "10.0.0.7", nil)
	in.groupRaw = g.Logs() * stageLineSize
	return in, nil
}

var errStageGroupFull = fmt.Errorf("the LogGroup is full")

// WriteStages writes the floors, and their sums for the relay's two kinds
// of input, after the runs' table.
func WriteStages(w io.Writer, stages []Stage) {
	if len(stages) == 0 {
		return
	}
	fmt.Fprintln(w, "\nfloor of each stage from the WAL to PutLogs, alone on one thread (CPU ms per MB raw = CPU s per GB):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range stages {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Name, f2(s.CPUMsMB), s.Note)
	}
	plain, gz := stageSums(stages)
	fmt.Fprintf(tw, "  sum, uncompressed input\t%s\t\n", f2(plain))
	fmt.Fprintf(tw, "  sum, gzip input\t%s\t\n", f2(gz))
	tw.Flush()
}

// stageSums adds the floors for the relay's two kinds of input:
// uncompressed (every stage but gunzip) and gzip; a stage Within a later
// one is not added.
func stageSums(stages []Stage) (plain, gz float64) {
	for _, s := range stages {
		if s.Within {
			continue
		}
		gz += s.CPUMsMB
		if s.Name != "gunzip" {
			plain += s.CPUMsMB
		}
	}
	return plain, gz
}

// stageFloor is the sum of the floors for a run's input compression
// (its "compression" setting); false for a codec without a measured
// floor (snappy, lz4, zstd) or an unknown one.
func stageFloor(stages []Stage, compression string) (float64, bool) {
	plain, gz := stageSums(stages)
	switch compression {
	case "none":
		return plain, true
	case "gzip":
		return gz, true
	}
	return 0, false
}
