package wal

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppendPrepared compares, in one run, the group commits'
// fdatasync latency of the active data file with Options.PrepareDataFiles
// on and off (the producers of BenchmarkAppend, sync=batch). The tail is
// what preparation is for: a file that grows needs a journal commit at
// its fdatasync, a prepared one does not. Run with a fixed -benchtime
// (e.g. 30000x; -count 3 alternates the settings) so both settings sync the same bytes.
func BenchmarkAppendPrepared(b *testing.B) {
	for _, on := range []bool{true, false} {
		name := "prepare=off"
		if on {
			name = "prepare=on"
		}
		b.Run(name, func(b *testing.B) {
			o := testOptions(b)
			o.Logger = nil // quiet: a failed append is a b.Error
			o.PrepareDataFiles = &on
			w := openTest(b, b.TempDir(), o)
			defer w.Close()
			var lat syncLatencies
			observe := lat.add
			w.syncObserver.Store(&observe)
			runProducers(b, func(g int, data []byte) error {
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

// syncLatencies collects fdatasync times. Safe for concurrent use.
type syncLatencies struct {
	mu sync.Mutex // protects d
	d  []time.Duration
}

func (l *syncLatencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// slowSync is the latency counted as slow: the lead's measure of the
// disk's rare fdatasyncs that tear the acknowledgement tail.
const slowSync = 25 * time.Millisecond

// report reports the quantiles (ms), the count and the syncs over
// slowSync.
func (l *syncLatencies) report(b *testing.B) {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
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
}
