package shardwriter

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// Fresh logs first after an outage: a producer writes to one shard at
// 60 % of its (fixed) pace of 100 kB/s; SLS refuses everything for 10 s
// (the drain test uses 60 s at 80 %: shortened so the backlog
// drains within the normal suite). Within 5 s of SLS answering again the
// newest log in SLS is at most 3 s old, while the backlog drains with the
// 40 % the fresh logs leave; every log arrives.
func TestWriterFreshLogsFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("about 30 s")
	}
	const (
		pace    = 100_000
		outage  = 10 * time.Second
		perTick = 11 // records of ~550 raw bytes every 100 ms: 60 kB/s
	)
	e := wtStart(t, func(o *Options) {
		o.ShardBytesPerSec, o.ShardRequestsPerSec, o.Pace = pace, -1, "fixed"
		o.FreshAfter, o.Linger, o.LogGroup.MaxLogs = 2*time.Second, 100*time.Millisecond, 50
	})
	pad := strings.Repeat("f", 500)
	var (
		mu       sync.Mutex
		appended []string
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ctx.Err() == nil; {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			recs := make([]batchtest.Record, perTick)
			var vals []string
			for i := range recs {
				n++
				v := fmt.Sprintf("fresh-%06d %s", n, pad)
				recs[i] = batchtest.Record{Value: []byte(v), Timestamp: time.Now().UnixMilli()}
				vals = append(vals, v)
			}
			errc := make(chan error, 1)
			e.w.Append(wal.StreamKey{Project: wtProject, Logstore: wtLogstore}, wtEntry(t, recs), true, func(_ int64, err error) { errc <- err })
			if err := <-errc; err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			appended = append(appended, vals...)
			mu.Unlock()
		}
	}()
	appendedSoFar := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return appended[:len(appended):len(appended)]
	}
	e.svc.Start()
	time.Sleep(2 * time.Second)
	if err := e.s.Outage(outage, slsfake.OutageError); err != nil {
		t.Fatal(err)
	}
	back := time.Now().Add(outage)
	time.Sleep(time.Until(back))
	backlog := appendedSoFar()

	newestAge := func() time.Duration {
		var newest uint32
		for _, l := range e.s.Logs(wtProject, wtLogstore) {
			newest = max(newest, l.Time)
		}
		return time.Since(time.Unix(int64(newest), 0))
	}
	var freshAfter, drainedAfter time.Duration
	for freshAfter == 0 || drainedAfter == 0 {
		el := time.Since(back)
		if el > 60*time.Second {
			t.Fatalf("60 s after SLS answered again: newest log fresh after %v, backlog drained after %v (0: not yet)", freshAfter, drainedAfter)
		}
		if freshAfter == 0 && newestAge() <= 3*time.Second {
			freshAfter = el
		}
		if drainedAfter == 0 {
			have := map[string]bool{}
			for _, v := range e.stored() {
				have[v] = true
			}
			all := true
			for _, v := range backlog {
				all = all && have[v]
			}
			if all {
				drainedAfter = el
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	wg.Wait()
	t.Logf("after an outage of %v at 60 %% of the pace: newest log in SLS at most 3 s old %v after SLS answered again; the backlog (%d logs) delivered after %v",
		outage, freshAfter.Round(100*time.Millisecond), len(backlog), drainedAfter.Round(100*time.Millisecond))
	if freshAfter > 5*time.Second {
		t.Errorf("the newest log in SLS was at most 3 s old only %v after SLS answered again, want within 5 s", freshAfter)
	}
	all := appendedSoFar()
	e.waitFor("every log delivered", func() bool {
		have := map[string]bool{}
		for _, v := range e.stored() {
			have[v] = true
		}
		for _, v := range all {
			if !have[v] {
				return false
			}
		}
		return true
	})
}

// A kill while a backlog drains beside fresh logs: what the fresh writer
// delivered before the hand-over is marked delivered in the WAL, so the
// relay started again sends only the backlog, not the fresh logs a second
// time.
func TestWriterFreshDeliveriesSurviveKill(t *testing.T) {
	e := wtStart(t, func(o *Options) { o.LogGroup.MaxLogs, o.FreshAfter = 16, 2*time.Second })
	held := "old"
	e.hook.hold.Store(&held) // SLS does not answer the backlog
	var names []string
	for i := range 3 {
		en := wtEntry(t, wtRecords(fmt.Sprint("old", i), 16))
		en.ReceivedAt = time.Now().Add(-time.Minute).UnixNano()
		e.appendEntry(en)
		names = append(names, fmt.Sprint("old", i))
	}
	e.svc.Start()
	e.waitFor("the backlog's first PutLogs", func() bool { return e.hook.puts.Load() >= 1 })
	for i := range 3 {
		e.append(wtRecords(fmt.Sprint("new", i), 16))
		names = append(names, fmt.Sprint("new", i))
	}
	e.waitFor("the fresh logs delivered while the backlog is held", func() bool { return len(e.stored()) == 48 })
	time.Sleep(100 * time.Millisecond)
	if got := e.committed(); got != 0 {
		t.Fatalf("committed %d before the hand-over, want 0", got)
	}
	close(e.hook.drop) // the kill
	e.hook.hold.Store(nil)
	putsBefore := e.hook.puts.Load()
	e.restart()
	e.waitFor("all 96 logs", func() bool { return len(e.stored()) >= 96 })
	e.waitFor("committed past all", func() bool { return e.committed() == 96 })
	time.Sleep(100 * time.Millisecond)
	got, want := e.stored(), wtNames(16, names...)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the stand-in holds %d logs, want each of %d once", len(got), len(want))
	}
	if n := e.hook.puts.Load() - putsBefore; n != 3 {
		t.Fatalf("after the restart %d PutLogs, want 3 (the backlog's)", n)
	}
}
