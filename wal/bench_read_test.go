package wal

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRead measures what a writer's reads cost: b.N entries of
// readBatch bytes (500 log lines of 1 KiB, uncompressed, as Beats sends
// them), appended first, then read in order 8 MiB at a time, each read
// committed (CommitAsync) before the next, as the writer does. The data is
// in the page cache, so a read is a copy out of it: one memory copy is the
// floor (the Stages benchmark's wal-copy). cpu-ms/MB is the process's CPU
// time (getrusage: the WAL's own goroutines and the garbage collector
// included) per MB read; the two cases run side by side:
//
//	new-buffer  a new buffer per entry (Readers by default)
//	reuse       Reader.ReuseData, as the shard writer reads
//
//	go test -run '^$' -bench Read -benchtime 400x ./wal/
func BenchmarkRead(b *testing.B) {
	const readBatch = 500 << 10
	for _, reuse := range []bool{false, true} {
		name := "new-buffer"
		if reuse {
			name = "reuse"
		}
		b.Run(name, func(b *testing.B) {
			o := testOptions(b)
			o.Logger = nil
			w := openTest(b, b.TempDir(), o)
			defer w.Close()
			k := sk(1)
			for i := range b.N {
				mustAppend(b, w, k, testEntry(uint64(i), readBatch, 500), i == b.N-1)
			}
			r, err := w.Reader(k)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			if reuse {
				r.ReuseData()
			}
			b.SetBytes(readBatch)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			b.ResetTimer()
			for n := 0; n < b.N; {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				es, err := r.Read(ctx, 8<<20, 4096)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				n += len(es)
				last := es[len(es)-1]
				if err := r.CommitAsync(last.BaseOffset + int64(last.Records)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu := processCPU(b) - cpu0
			b.ReportMetric(float64(cpu.Nanoseconds())/1e6/(float64(b.N)*readBatch/1e6), "cpu-ms/MB")
		})
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
