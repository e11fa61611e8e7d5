package shardwriter

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// A kill while a backlog drains beside fresh logs: what the fresh writer
// delivered before the hand-over is marked delivered in the WAL, so the
// relay started again sends only the backlog, not the fresh logs a second
// time.
func TestWriterFreshDeliveriesSurviveKill(t *testing.T) {
	e := wtStart(t, func(o *Options) { o.LogGroup.MaxLogs, o.FreshAfter = 16, 2*time.Second })
	held := "old"
	e.hook.hold.Store(&held) // SLS does not answer the backlog
	names := e.startBehind(3, 1)
	e.waitFor("the fresh logs delivered while the backlog is held", func() bool { return len(e.stored()) == 48 })
	time.Sleep(100 * time.Millisecond)
	if got := e.committed(); got != 0 {
		t.Fatalf("committed %d before the hand-over, want 0", got)
	}
	e.killAndRestart(wtNames(16, names...), 3) // the backlog's 3 LogGroups
}

// While a backlog drains beside fresh logs, the shard has at most
// RequestsInFlight PutLogs in flight, the backlog's and the fresh
// writer's together (Options.RequestsInFlight: a crash sends again at most
// that many LogGroups per shard). Once SLS answers, each log is delivered
// once.
func TestWriterDrainKeepsShardWindow(t *testing.T) {
	e := wtStart(t, func(o *Options) { o.LogGroup.MaxLogs, o.FreshAfter, o.RequestsInFlight = 16, 2*time.Second, 2 })
	held := "-000" // the first log of every LogGroup
	e.hook.hold.Store(&held)
	names := e.startBehind(4, 2)
	time.Sleep(500 * time.Millisecond) // the fresh writer sends what it may
	if n := e.hook.maxInFlight.Load(); n > 2 {
		t.Errorf("%d PutLogs of the shard in flight at once while its backlog drains, want at most 2 (requests_in_flight)", n)
	}
	close(e.hook.release)
	e.waitFor("every log", func() bool { return len(e.stored()) >= 128 })
	e.waitFor("committed past all", func() bool { return e.committed() == 128 })
	got := sorted(e.stored())
	if want := wtNames(16, names...); !slices.Equal(got, sorted(want)) {
		t.Fatalf("the stand-in holds %d logs, want each of %d once", len(got), len(want))
	}
}

// startBehind appends groups entries of 16 records received a minute ago
// (old0, old1, …), starts the Service, waits for puts PutLogs of that
// backlog, then appends as many fresh ones (new0, …); it returns their
// names in that order.
func (e *wtEnv) startBehind(groups int, puts int64) []string {
	e.t.Helper()
	var names []string
	for i := range groups {
		en := wtEntry(e.t, wtRecords(fmt.Sprint("old", i), 16))
		en.ReceivedAt = time.Now().Add(-time.Minute).UnixNano()
		e.appendEntry(en)
		names = append(names, fmt.Sprint("old", i))
	}
	e.svc.Start()
	e.waitFor("the backlog's PutLogs", func() bool { return e.hook.puts.Load() >= puts })
	for i := range groups {
		e.append(wtRecords(fmt.Sprint("new", i), 16))
		names = append(names, fmt.Sprint("new", i))
	}
	return names
}
