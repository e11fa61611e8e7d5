package wal

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkAckWhileDelivering measures what delivery costs acknowledgements
// inside the WAL: durable appends (acks=-1) from 8 producers to 4 streams,
// alone and with each stream's reader reading every entry and committing
// after each (CommitAsync, as a shard writer does after every PutLogs
// answer). The figure is the append latency's p50 and p99.
func BenchmarkAckWhileDelivering(b *testing.B) {
	for _, readers := range []bool{false, true} {
		name := "appends-only"
		if readers {
			name = "with-readers"
		}
		b.Run(name, func(b *testing.B) {
			w := openTest(b, b.TempDir(), testOptions(b))
			defer w.Close()
			data := payload(1, 16<<10)
			ctx, cancel := context.WithCancel(context.Background())
			var rwg sync.WaitGroup
			if readers {
				for i := range 4 {
					mustAppend(b, w, sk(i), &Entry{Magic: 2, Records: 1, Credential: Credential{AccessKeyID: "id", AccessKeySecret: "secret"}, Data: data}, true)
					r, err := w.Reader(sk(i))
					if err != nil {
						b.Fatal(err)
					}
					rwg.Add(1)
					go func() {
						defer rwg.Done()
						defer r.Close()
						for {
							es, err := r.Read(ctx, 1<<20, 64)
							if err != nil {
								return
							}
							for _, e := range es {
								_ = r.CommitAsync(e.BaseOffset + int64(e.Records))
							}
						}
					}()
				}
			}
			var mu sync.Mutex
			var lat []time.Duration
			per := b.N/8 + 1
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mine := make([]time.Duration, 0, per)
					for range per {
						t0 := time.Now()
						e := &Entry{Magic: 2, Records: 1, Credential: Credential{AccessKeyID: "id", AccessKeySecret: "secret"}, Data: data}
						if _, err := w.AppendWait(sk(g%4), e, true); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
						time.Sleep(time.Millisecond)
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			b.StopTimer()
			cancel()
			rwg.Wait()
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
		})
	}
}
