package wal

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppendPrepared compares, in one run, the group commits'
// fdatasync latency of the active data file with Options.PrepareDataFiles
// on and off (sync=batch, acknowledged after the sync). The tail is what
// preparation is for: a file that grows needs a journal commit at its
// fdatasync, a prepared one does not. Run with a fixed -benchtime so
// both settings sync the same bytes.
//
// Two loads: saturated, the producers of BenchmarkAppend as fast as the
// disk allows (64 KiB appends), where the spares' zeros compete with the
// frames for the disk's bandwidth; paced, pacedRate appends of
// pacedBatch bytes a second (16 MB/s, a burst of the bench's burst
// scenario is lighter), where the disk has time for them. -benchtime
// 20000x paces for 20 s.
func BenchmarkAppendPrepared(b *testing.B) {
	loads := []struct {
		name string
		run  func(b *testing.B, appendWait func(g int, data []byte) error)
	}{
		{"saturated", runProducers},
		{"paced", runPaced},
	}
	for _, load := range loads {
		for _, on := range []bool{true, false} {
			name := load.name + "/prepare=off"
			if on {
				name = load.name + "/prepare=on"
			}
			b.Run(name, func(b *testing.B) {
				o := testOptions(b)
				o.Logger = nil // quiet: a failed append is a b.Error
				o.PrepareDataFiles = on
				w := openTest(b, b.TempDir(), o)
				defer w.Close()
				var lat syncLatencies
				observe := func(f *dataFile, d time.Duration) {
					lat.add(d, f.prepared, w.data.spare != nil && w.data.spare.filling.Load())
				}
				w.syncObserver.Store(&observe)
				load.run(b, func(g int, data []byte) error {
					e := &Entry{Magic: 2, Records: 1, Credential: Credential{AccessKeyID: "id", AccessKeySecret: "secret"}, Data: data}
					_, err := w.AppendWait(sk(g%4), e, false)
					return err
				})
				lat.report(b)
				if p := w.data.spare; p != nil {
					b.ReportMetric(float64(p.taken.Load()), "files-prepared")
					b.ReportMetric(float64(p.missed.Load()), "files-unprepared")
				}
			})
		}
	}
}

const (
	pacedRate  = 1000 // appends a second
	pacedBatch = 16 << 10
)

// runPaced runs b.N appends of pacedBatch bytes at pacedRate a second in
// all, from benchProducers goroutines that each wait for their append.
func runPaced(b *testing.B, appendWait func(g int, data []byte) error) {
	data := payload(1, pacedBatch)
	b.SetBytes(pacedBatch)
	tickets := make(chan struct{}, pacedRate)
	b.ResetTimer()
	go func() {
		defer close(tickets)
		start := time.Now()
		for n := 0; n < b.N; {
			due := int(time.Since(start) * pacedRate / time.Second)
			for ; n < min(due, b.N); n++ {
				tickets <- struct{}{}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for g := range benchProducers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tickets {
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

// syncLatencies collects fdatasync times, and counts the slow ones by
// where they happened: in a prepared file or one that grows, while a
// spare was being written or not. Safe for concurrent use.
type syncLatencies struct {
	mu sync.Mutex // protects the fields
	d  []time.Duration
	// prepared counts the syncs of prepared files; slowPrepared,
	// slowGrowing and slowFilling the slow syncs of prepared files, of
	// growing ones, and while a spare was written.
	prepared, slowPrepared, slowGrowing, slowFilling int
}

func (l *syncLatencies) add(d time.Duration, prepared, filling bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = append(l.d, d)
	if prepared {
		l.prepared++
	}
	if d <= slowSync {
		return
	}
	if prepared {
		l.slowPrepared++
	} else {
		l.slowGrowing++
	}
	if filling {
		l.slowFilling++
	}
}

// slowSync is the latency counted as slow: the lead's measure of the
// disk's rare fdatasyncs that tear the acknowledgement tail.
const slowSync = 25 * time.Millisecond

// report reports the quantiles (ms), the count and the syncs over
// slowSync.
func (l *syncLatencies) report(b *testing.B) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := slices.Clone(l.d)
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / 1e6
	}
	slow := 0
	if i := slices.IndexFunc(d, func(x time.Duration) bool { return x > slowSync }); i >= 0 {
		slow = len(d) - i
	}
	b.ReportMetric(float64(len(d)), "fdatasyncs")
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(0.999), "p99.9-ms")
	b.ReportMetric(float64(d[len(d)-1])/1e6, "max-ms")
	b.ReportMetric(float64(slow), "over25ms")
	b.ReportMetric(float64(l.prepared), "fdatasyncs-prepared")
	b.ReportMetric(float64(l.slowPrepared), "over25ms-prepared")
	b.ReportMetric(float64(l.slowGrowing), "over25ms-growing")
	b.ReportMetric(float64(l.slowFilling), "over25ms-while-filling")
}
