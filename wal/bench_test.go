package wal

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// The benchmarks compare the WAL with the best a plain file can do on the
// same disk: 16 concurrent producers of 64 KiB batches, group commit, one
// fsync per group. The ratio WAL/plain is the figure that matters.

const (
	benchProducers = 16
	benchBatch     = 64 << 10
)

// runProducers runs b.N appends of benchBatch bytes from benchProducers
// goroutines, each waiting for its previous append (like a connection
// waiting for its acks).
func runProducers(b *testing.B, appendWait func(g int, data []byte) error) {
	data := payload(1, benchBatch)
	b.SetBytes(benchBatch)
	b.ResetTimer()
	var wg sync.WaitGroup
	var next sync.Mutex
	n := 0
	for g := range benchProducers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				if n >= b.N {
					next.Unlock()
					return
				}
				n++
				next.Unlock()
				if err := appendWait(g, data); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
}

func BenchmarkAppend(b *testing.B) {
	for _, pol := range []SyncPolicy{SyncBatch, SyncInterval} {
		b.Run("sync="+pol.String(), func(b *testing.B) {
			o := testOptions(b)
			o.Sync = pol
			o.ReclaimInterval = -1
			if v := os.Getenv("WAL_BENCH_VLOG_MB"); v != "" {
				mb, _ := strconv.Atoi(v)
				o.ValueLogFileSize = int64(mb) << 20
			}
			w := openTest(b, b.TempDir(), o)
			defer w.Close()
			runProducers(b, func(g int, data []byte) error {
				e := &Entry{Magic: 2, Records: 1, Credential: Credential{AccessKeyID: "id", AccessKeySecret: "secret"}, Data: data}
				_, err := w.AppendWait(sk(g%4), e, false)
				return err
			})
			groups, syncs := w.groups.Load(), w.syncs.Load()
			b.ReportMetric(float64(b.N)/float64(groups), "appends/group")
			if syncs > 0 {
				b.ReportMetric(float64(b.N)/float64(syncs), "appends/sync")
				b.ReportMetric(float64(w.syncNanos.Load())/float64(syncs)/1e6, "ms/sync")
			}
			b.ReportMetric(float64(w.writeNanos.Load())/float64(groups)/1e6, "ms/write")
		})
	}
}

// BenchmarkPlainFile is the reference: the same producers hand their
// batches to one writer that appends everything queued to a file with
// write(2) and fsyncs once per group before acknowledging.
func BenchmarkPlainFile(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "plain"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	type req struct {
		data []byte
		done chan error
	}
	var mu sync.Mutex
	var queue []req
	wake := make(chan struct{}, 1)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-wake:
			case <-stop:
				return
			}
			for {
				mu.Lock()
				g := queue
				queue = nil
				mu.Unlock()
				if len(g) == 0 {
					break
				}
				var err error
				for _, r := range g {
					if _, err = f.Write(r.data); err != nil {
						break
					}
				}
				if err == nil {
					err = f.Sync()
				}
				for _, r := range g {
					r.done <- err
				}
			}
		}
	}()
	defer close(stop)
	runProducers(b, func(_ int, data []byte) error {
		r := req{data, make(chan error, 1)}
		mu.Lock()
		queue = append(queue, r)
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
		return <-r.done
	})
}
