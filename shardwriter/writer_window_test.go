package shardwriter

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
)

// wtCommitted returns the stream's committed position (-1 before it
// exists).
func (e *wtEnv) committed() int64 {
	st := e.w.Stats()
	if len(st.Streams) != 1 {
		return -1
	}
	return st.Streams[0].Committed
}

// wtNames returns the values of wtRecords for each name, in order.
func wtNames(n int, names ...string) []string {
	var out []string
	for _, name := range names {
		for _, r := range wtRecords(name, n) {
			out = append(out, string(r.Value))
		}
	}
	return out
}

// With four PutLogs in flight, SLS holds the second LogGroup of five and
// answers the others: the position waits after the first, the held one is
// retried alone, and the answered ones behind it are neither sent again
// nor lost. Killed then and started again, the writer sends only the held
// LogGroup.
func TestWriterWindowResendsOnlyUnanswered(t *testing.T) {
	e := wtStart(t, func(o *Options) { o.LogGroup.MaxLogs, o.RequestsInFlight = 16, 4 })
	held := "b-"
	e.hook.hold.Store(&held)
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names {
		e.append(wtRecords(n, 16)) // one LogGroup each
	}
	e.svc.Start()
	e.waitFor("a, c, d and e delivered, b held", func() bool { return len(e.stored()) == 64 })
	time.Sleep(100 * time.Millisecond)
	if got := e.committed(); got != 16 {
		t.Fatalf("committed %d with the second LogGroup held, want 16 (past the first only)", got)
	}
	if puts := e.hook.puts.Load(); puts != 5 {
		t.Fatalf("%d PutLogs with one held, want 5 (none sent twice)", puts)
	}
	e.killAndRestart(wtNames(16, names...), 1)
}

// killAndRestart kills the relay while the hook holds PutLogs (their
// connections cut), starts it again with nothing held, and checks that the
// stand-in then holds each of want once, after exactly puts more PutLogs.
func (e *wtEnv) killAndRestart(want []string, puts int64) {
	e.t.Helper()
	close(e.hook.drop)
	e.hook.hold.Store(nil)
	putsBefore := e.hook.puts.Load()
	e.restart()
	e.waitFor("every log", func() bool { return len(e.stored()) >= len(want) })
	e.waitFor("committed past all", func() bool { return e.committed() == int64(len(want)) })
	time.Sleep(100 * time.Millisecond)
	got := e.stored()
	sort.Strings(got)
	want = slices.Clone(want)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		e.t.Fatalf("the stand-in holds %d logs, want each of %d once", len(got), len(want))
	}
	if n := e.hook.puts.Load() - putsBefore; n != puts {
		e.t.Fatalf("after the restart %d PutLogs, want %d", n, puts)
	}
}

// With SLS answering each PutLogs after 40 ms, a shard keeps as many
// PutLogs in flight as its window allows, and never more. (The times are
// logged, not asserted: speed claims live in benchmarks, and on a loaded
// machine the ratio of the two runs says more about the machine.)
func TestWriterWindowThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("about 3 s")
	}
	const groups = 40
	run := func(window int) time.Duration {
		e := wtStart(t, func(o *Options) { o.LogGroup.MaxLogs, o.RequestsInFlight = 16, window })
		if _, err := e.s.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Latency: 40 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		for i := range groups {
			e.append(wtRecords(fmt.Sprint("g", i), 16))
		}
		t0 := time.Now()
		e.svc.Start()
		e.waitFor("all logs", func() bool { return len(e.stored()) == groups*16 })
		took := time.Since(t0)
		if m := e.hook.maxInFlight.Load(); m != int64(window) {
			t.Errorf("window %d: at most %d PutLogs were in flight at once, want %d", window, m, window)
		}
		return took
	}
	one, four := run(1), run(4)
	t.Logf("%d LogGroups at 40 ms each: %v with 1 in flight, %v with 4 (%.1f×)", groups, one.Round(time.Millisecond), four.Round(time.Millisecond), float64(one)/float64(four))
}

// While SLS refuses every write, a shard with four LogGroups in flight
// retries one of them at a time, not four: an outage costs SLS one request
// per back-off per shard. Once SLS answers, all are delivered once.
func TestWriterWindowOneProbeDuringOutage(t *testing.T) {
	e := wtStart(t, func(o *Options) {
		o.LogGroup.MaxLogs, o.RequestsInFlight = 16, 4
		o.RetryInterval, o.MaxRetryInterval = 50*time.Millisecond, 50*time.Millisecond
	})
	id, err := e.s.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Status: 503})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names {
		e.append(wtRecords(n, 16))
	}
	e.svc.Start()
	e.waitFor("4 LogGroups tried", func() bool { return e.hook.puts.Load() >= 4 })
	from := e.hook.puts.Load()
	time.Sleep(time.Second)
	// 20 back-offs of 50 ms: about 20 retries with one prober, 80 with
	// four.
	if n := e.hook.puts.Load() - from; n > 35 {
		t.Fatalf("%d PutLogs in 1 s of refusals with 50 ms back-off, want about 20 (one LogGroup retried at a time)", n)
	}
	e.s.RemoveFault(id)
	e.waitFor("all 80 logs", func() bool { return len(e.stored()) >= 80 })
	time.Sleep(100 * time.Millisecond)
	got, want := e.stored(), wtNames(16, names...)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("the stand-in holds %d logs, want each of %d once", len(got), len(want))
	}
}

// fail503 is a RoundTripper that answers 503 ServerBusy to PutLogs
// bodies holding a log with a value containing marker, before they reach
// the test's hook.
type fail503 struct {
	next   http.RoundTripper
	marker atomic.Pointer[string]
}

func (f *fail503) RoundTrip(req *http.Request) (*http.Response, error) {
	m := f.marker.Load()
	if m == nil || req.Method != http.MethodPost || !strings.Contains(req.URL.Path, "/shards/") {
		return f.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	if lg, err := wtDecodePut(req, body); err == nil && wtHolds(lg, *m) {
		h := http.Header{"Content-Type": {"application/json"}, "Date": {time.Now().UTC().Format(http.TimeFormat)}}
		msg := `{"errorCode":"ServerBusy","errorMessage":"busy (test)"}`
		return &http.Response{StatusCode: 503, Header: h, Body: io.NopCloser(strings.NewReader(msg)), ContentLength: int64(len(msg)), Request: req}, nil
	}
	return f.next.RoundTrip(req)
}

// A stop while SLS keeps refusing the first LogGroup of the window for
// now: a LogGroup behind it that SLS takes while the writer stops is
// marked delivered like those answered before the stop, so the relay
// started again sends only the refused one.
func TestWriterStopMarksAnsweredBehind(t *testing.T) {
	var fail *fail503
	e := wtStart(t, func(o *Options) {
		o.LogGroup.MaxLogs, o.RequestsInFlight = 16, 4
		hc := *o.HTTPClient
		fail = &fail503{next: hc.Transport}
		hc.Transport = fail
		o.HTTPClient = &hc
	})
	failing, held := "a-", "b-"
	fail.marker.Store(&failing)
	e.hook.hold.Store(&held)
	names := []string{"a", "b", "c", "d"}
	for _, n := range names {
		e.append(wtRecords(n, 16))
	}
	e.svc.Start()
	e.waitFor("c and d delivered, b held", func() bool { return len(e.stored()) == 32 && e.hook.inFlight.Load() == 1 })
	stopped := make(chan struct{})
	go func() {
		e.svc.Close()
		close(stopped)
	}()
	time.Sleep(100 * time.Millisecond) // the sender of a gives up
	close(e.hook.release)              // SLS takes b while the writer stops
	<-stopped
	if n := len(e.stored()); n != 48 {
		t.Fatalf("the stand-in holds %d logs after the stop, want 48 (b, c and d)", n)
	}
	fail.marker.Store(nil)
	e.hook.release = make(chan struct{})
	e.hook.drop = make(chan struct{})
	e.killAndRestart(wtNames(16, names...), 1) // a's LogGroup alone
}
