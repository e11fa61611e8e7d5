package shardwriter

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// The drain test (the issue's): producers write one shard at 80 % of its
// write quota, to which the writer is paced (fixed: SLS's per-shard quota
// is soft, "best effort" past it — see bench/slsfake/quota.go — so the
// relay's pace is the limit, and the backlog gets exactly what the fresh
// logs leave; adaptive pacing against a hard quota is
// TestWriterPacesToProjectQuota's); SLS refuses everything for 60 s
// (10 minutes with SLSRELAY_LONG_TESTS=1). It
// measures, after SLS answers again, the age of the newest log in SLS
// (goal: at most 10 s old 10 s later) and how the backlog drains with the
// quota the fresh logs leave. In the normal suite the producers run 30 s
// more and the drain time is projected from the backlog's rate then; the
// producers stop and the rest is delivered. The long run keeps the
// producers going until the whole backlog is in SLS and measures the drain
// time itself. This file sorts early so that the test starts before the
// package's other tests and runs beside them (t.Parallel): it adds little
// to the package's time.

// drainQuota is the shard's write quota in the drain test, raw bytes/s.
const drainQuota = 100_000

type drainPlan struct {
	outage, observe time.Duration
	full            bool          // producers run until the backlog is delivered
	poll            time.Duration // how often the stand-in is read (all of it)
}

type drainResult struct {
	err                       error
	perTick, logBytes         int // logs per 100 ms, raw bytes per log
	backlog                   int // logs not in SLS when it answered again
	freshAfter                time.Duration
	ageAfter10s               time.Duration
	backlogRate               float64 // backlog logs delivered per second while producers ran
	drained                   time.Duration
	projected                 bool // drained is projected from backlogRate
	restDrained               time.Duration
	produced, stored, uniques int
}

func TestWriterDrainAfterOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("about 2 minutes, beside the other tests")
	}
	if cvtRaceEnabled {
		t.Skip("its figures are timings; the race detector's would say little")
	}
	plan := drainPlan{outage: 60 * time.Second, observe: 12 * time.Second, poll: 500 * time.Millisecond} // observe: past the 10 s figure, then the rest drains at the full pace
	if os.Getenv("SLSRELAY_LONG_TESTS") == "1" {
		// About 50 minutes: a fifth of the quota drains 8 minutes of
		// backlog.
		plan = drainPlan{outage: 10 * time.Minute, full: true, poll: 5 * time.Second}
	}
	done := startDrain(t, plan)
	t.Parallel()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	how := "measured"
	if r.projected {
		how = "projected"
	}
	t.Logf("%d logs/s of %d raw bytes (%.0f %% of the %d B/s quota); after an outage of %v: newest log in SLS at most 3 s old %v after SLS answered again, %v old 10 s after; backlog of %d logs drained at %.0f logs/s (%.0f %% of the quota) beside the fresh logs: drain time %v (%s)",
		r.perTick*10, r.logBytes, float64(r.perTick*10*r.logBytes)*100/drainQuota, drainQuota, plan.outage,
		r.freshAfter.Round(100*time.Millisecond), r.ageAfter10s.Round(time.Second), r.backlog, r.backlogRate,
		r.backlogRate*float64(r.logBytes)*100/drainQuota, r.drained.Round(time.Second), how)
	if r.projected {
		t.Logf("producers stopped after %v: the rest of the backlog delivered %v later", plan.observe, r.restDrained.Round(time.Second))
	}
	if r.ageAfter10s > 10*time.Second {
		t.Errorf("10 s after SLS answered again the newest log in SLS was %v old, want at most 10 s", r.ageAfter10s)
	}
	// The fresh logs take 80 % of the quota; the backlog must move with
	// most of the rest.
	if minRate := 0.1 * drainQuota / float64(r.logBytes); r.backlogRate < minRate {
		t.Errorf("the backlog drained at %.0f logs/s beside the fresh logs, want at least %.0f (10 %% of the quota)", r.backlogRate, minRate)
	}
	if r.uniques != r.produced || r.stored != r.produced {
		t.Errorf("the stand-in holds %d logs (%d different) of %d produced, want each once", r.stored, r.uniques, r.produced)
	}
}

// startDrain sets up the drain test's relay, stand-in and producer and runs
// the plan in the background: the result comes on the channel.
func startDrain(t *testing.T, plan drainPlan) <-chan drainResult {
	e := wtStart(t, func(o *Options) {
		// LogGroups scaled to the quota as SLS's are (4 MB groups, 5 MB/s):
		// a group of 0.8 s of quota.
		o.ShardBytesPerSec, o.ShardRequestsPerSec, o.Pace = drainQuota, -1, "fixed"
		o.LogGroup.MaxBytes = drainQuota * 8 / 10
		o.Linger, o.RetryInterval, o.MaxRetryInterval = 200*time.Millisecond, time.Second, 0
	})
	pad := strings.Repeat("d", 500)
	value := func(n int) string { return fmt.Sprintf("drain-%07d %s", n, pad) }
	// 80 % of the quota in the raw bytes SLS counts: the size of a log
	// as the writer builds it.
	recs := make([]batchtest.Record, 10)
	for i := range recs {
		recs[i] = batchtest.Record{Value: []byte(value(i)), Timestamp: time.Now().UnixMilli()}
	}
	g := NewLogGroupBuilder(e.svc.opts.LogGroup)
	if _, err := NewConverter(e.svc.opts.Convert).Convert(g, wtEntry(t, recs), time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	logBytes := len(g.Bytes(e.svc.opts.Topic, e.svc.opts.Source, nil)) / len(recs)
	perTick := int(math.Round(0.8 * drainQuota / 10 / float64(logBytes)))

	done := make(chan drainResult, 1)
	go func() {
		r := runDrain(e, plan, perTick, value, t.Logf)
		r.perTick, r.logBytes = perTick, logBytes
		done <- r
	}()
	return done
}

// runDrain runs the plan on e; see TestWriterDrainAfterOutage.
// It logs its progress every minute with logf.
func runDrain(e *wtEnv, plan drainPlan, perTick int, value func(int) string, logf func(string, ...any)) (r drainResult) {
	var produced atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	var produceErr atomic.Pointer[error]
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			n := int(produced.Load())
			recs := make([]batchtest.Record, perTick)
			for i := range recs {
				recs[i] = batchtest.Record{Value: []byte(value(n + i)), Timestamp: time.Now().UnixMilli()}
			}
			// (wtEntry fails the test only if gzip cannot write to memory.)
			errc := make(chan error, 1)
			e.w.Append(wal.StreamKey{Project: wtProject, Logstore: wtLogstore}, wtEntry(e.t, recs), true, func(_ int64, err error) { errc <- err })
			if err := <-errc; err != nil {
				produceErr.Store(&err)
				return
			}
			produced.Add(int64(perTick))
		}
	}()
	stopProducers := func() {
		stop()
		wg.Wait()
	}
	defer stopProducers()

	// look returns the stand-in's newest log time, and how many logs below
	// n it holds (different ones), and in all.
	look := func(n int) (newest time.Time, below, uniques, stored int) {
		seen := map[int]bool{}
		var newestSec uint32
		for _, l := range e.s.Logs(wtProject, wtLogstore) {
			newestSec = max(newestSec, l.Time)
			for _, c := range l.Contents {
				if c.Key != "content" || len(c.Value) < 13 {
					continue
				}
				if i, err := strconv.Atoi(c.Value[6:13]); err == nil {
					stored++
					if !seen[i] {
						seen[i] = true
						if i < n {
							below++
						}
					}
				}
			}
		}
		return time.Unix(int64(newestSec), 0), below, len(seen), stored
	}

	e.svc.Start()
	time.Sleep(2 * time.Second)
	if err := e.s.Outage(plan.outage, slsfake.OutageError); err != nil {
		return drainResult{err: err}
	}
	back := time.Now().Add(plan.outage)
	time.Sleep(time.Until(back))
	backlogEnd := int(produced.Load())
	_, before, _, _ := look(backlogEnd)
	r.backlog = backlogEnd - before
	deadline := back.Add(plan.observe)
	if plan.full {
		deadline = back.Add(6*plan.outage + 5*time.Minute)
	}
	var below int
	lastLog := time.Now()
	for {
		time.Sleep(plan.poll)
		if p := produceErr.Load(); p != nil {
			return drainResult{err: fmt.Errorf("cannot append: %w", *p)}
		}
		var newest time.Time
		newest, below, _, _ = look(backlogEnd)
		el := time.Since(back)
		if r.freshAfter == 0 && time.Since(newest) <= 3*time.Second {
			r.freshAfter = el
		}
		if r.ageAfter10s == 0 && el >= 10*time.Second {
			r.ageAfter10s = time.Since(newest)
		}
		if below == backlogEnd && r.drained == 0 {
			r.drained = el
		}
		if time.Since(lastLog) >= time.Minute {
			lastLog = time.Now()
			logf("%v after SLS answered again: %d of the backlog's %d logs delivered; newest log %v old", el.Round(time.Second), below-before, r.backlog, time.Since(newest).Round(time.Second))
		}
		if plan.full && r.drained > 0 && r.ageAfter10s > 0 || time.Now().After(deadline) {
			break
		}
	}
	el := time.Since(back)
	r.backlogRate = float64(below-before) / el.Seconds()
	if r.drained == 0 {
		if plan.full {
			return drainResult{err: fmt.Errorf("the backlog of %d logs was not delivered within %v of SLS answering again (%d were)", r.backlog, el.Round(time.Second), below-before)}
		}
		r.projected = true
		if r.backlogRate > 0 {
			r.drained = el + time.Duration(float64(backlogEnd-below)/r.backlogRate*float64(time.Second))
		}
	}
	stopProducers()
	restFrom := time.Now()
	all := int(produced.Load())
	for {
		_, below, uniques, stored := look(all)
		if below == all {
			if r.projected {
				r.restDrained = time.Since(restFrom)
			}
			time.Sleep(500 * time.Millisecond) // duplicates would come now
			_, _, r.uniques, r.stored = look(all)
			r.produced = all
			return r
		}
		if time.Since(restFrom) > 3*time.Minute {
			return drainResult{err: fmt.Errorf("3 minutes after the producers stopped the stand-in holds %d of %d logs (%d stored)", uniques, all, stored)}
		}
		time.Sleep(500 * time.Millisecond)
	}
}
