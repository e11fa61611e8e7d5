package shardwriter

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// Adaptive pacing against a project quota: two writers (2 shards) drain a
// backlog into a project whose hard write quota (403 WriteQuotaExceed) is
// far below the shards' rates. Once the quota's one-minute burst is spent
// and the writers settled (15 s), SLS accepts within 10 % of the quota over
// 20 s, and quota answers are under 1 % of the requests. Parallel with the
// per-shard case and the drain test (the package's longest), so that it
// adds no time, and so that it runs on a busy machine.
func TestWriterPacesToProjectQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("about 40 s")
	}
	t.Parallel()
	const quota = 100_000 // raw bytes/s
	e := wtStart(t, func(o *Options) { o.LogGroup.MaxLogs = 10 })
	if err := e.s.SetProjectQuota(wtProject, slsfake.ProjectQuota{WriteBytesPerMinute: 60 * quota}); err != nil {
		t.Fatal(err)
	}
	// 6 MB of burst, then 35 s at the quota, and some to spare.
	m := paceMeasure(e, 11<<20, func(s slsfake.Stats) int64 { return s.ProjectQuotaRejections })
	t.Logf("over %v: SLS accepted %.0f raw bytes/s (quota %d), %d of %d requests answered 403 WriteQuotaExceed",
		m.took.Round(time.Millisecond), m.rate, quota, m.refused, m.requests)
	if cvtRaceEnabled {
		// The race detector slows the writers unevenly; the stand-in's
		// quota, a minute deep, then lends them more for a while.
		t.Skip("the figures are not checked under the race detector")
	}
	if math.Abs(m.rate-quota) > 0.1*quota {
		t.Errorf("accepted %.0f bytes/s, want within 10 %% of the quota %d", m.rate, quota)
	}
	if float64(m.refused) >= 0.01*float64(m.requests) {
		t.Errorf("%d of %d requests answered 403, want under 1 %%", m.refused, m.requests)
	}
}

// Adaptive pacing against a hard per-shard quota with large LogGroups
// (0.8 s of the quota each, as SLS's 4 MB LogGroups are of its 5 MB/s):
// each writer's own pacer finds its shard's quota, and SLS accepts within
// 10 % of the two shards' quotas over 20 s.
func TestWriterPacesToShardQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("about 40 s")
	}
	t.Parallel()
	const quota = 100_000 // raw bytes/s, per shard
	e := wtStart(t, func(o *Options) { o.LogGroup.MaxBytes = 80_000 })
	if err := e.s.SetQuota(wtProject, wtLogstore, slsfake.Quota{BytesPerSec: quota}); err != nil {
		t.Fatal(err)
	}
	m := paceMeasure(e, 9<<20, func(s slsfake.Stats) int64 { return s.QuotaRejections })
	t.Logf("over %v: SLS accepted %.0f raw bytes/s (2 shards, quota %d each), %d of %d requests answered 403 ShardWriteQuotaExceed",
		m.took.Round(time.Millisecond), m.rate, quota, m.refused, m.requests)
	if cvtRaceEnabled {
		t.Skip("the figures are not checked under the race detector")
	}
	if math.Abs(m.rate-2*quota) > 0.1*2*quota {
		t.Errorf("accepted %.0f bytes/s, want within 10 %% of the shards' quota %d", m.rate, 2*quota)
	}
}

// paceResult is what SLS accepted and refused while paceMeasure measured.
type paceResult struct {
	took              time.Duration
	rate              float64 // raw bytes/s accepted
	refused, requests int64
}

// paceMeasure appends a backlog of about backlog raw bytes (logs of about
// 550 bytes) to both of the Logstore's streams, starts the writers, waits
// for the first quota answer (refused counts them), lets the writers
// settle for 15 s and measures the next 20 s.
func paceMeasure(e *wtEnv, backlog int, refused func(slsfake.Stats) int64) paceResult {
	e.t.Helper()
	const (
		settle  = 15 * time.Second
		measure = 20 * time.Second
	)
	pad := strings.Repeat("p", 500)
	for i := range backlog / 550 / 400 {
		recs := make([]batchtest.Record, 400)
		for j := range recs {
			recs[j] = batchtest.Record{Value: []byte(fmt.Sprintf("%05d-%03d %s", i, j, pad)), Timestamp: time.Now().UnixMilli()}
		}
		k := wal.StreamKey{Project: wtProject, Logstore: wtLogstore, Partition: int32(i % 2)}
		errc := make(chan error, 1)
		e.w.Append(k, wtEntry(e.t, recs), true, func(_ int64, err error) { errc <- err })
		if err := <-errc; err != nil {
			e.t.Fatal(err)
		}
	}
	e.svc.Start()
	e.waitFor("the quota spent (a 403)", func() bool { return refused(e.s.Stats()) > 0 })
	time.Sleep(settle)
	s0, t0 := e.s.Stats(), time.Now()
	time.Sleep(measure)
	s1, t1 := e.s.Stats(), time.Now()
	r := paceResult{took: t1.Sub(t0), refused: refused(s1) - refused(s0)}
	r.rate = float64(s1.PutRawBytes-s0.PutRawBytes) / r.took.Seconds()
	r.requests = s1.PutLogGroups - s0.PutLogGroups + r.refused
	return r
}
