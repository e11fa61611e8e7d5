package shardwriter

import (
	"slices"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
)

func TestRetime(t *testing.T) {
	const lo, hi, repl = 1_000_000_000, 1_000_100_000, 1_000_050_000
	f := func(times []uint32, want []uint32, wantChanged int) {
		t.Helper()
		g := NewLogGroupBuilder(LogGroupLimits{})
		fs := []cvField{{[]byte("content"), []byte("v")}, {[]byte("k"), []byte("w")}}
		for i, sec := range times {
			g.appendLog(lgLogBodySize(sec, fs), sec, uint32(i), fs, logRef{})
		}
		before := &g.Bytes("", "", nil)[0]
		if n := g.retime(lo, hi, repl); n != wantChanged {
			t.Errorf("%v: %d changed, want %d", times, n, wantChanged)
		}
		if wantChanged == 0 && &g.Bytes("", "", nil)[0] != before {
			t.Errorf("%v: re-encoded with nothing to change", times)
		}
		got := cvtParse(t, g.Bytes("", "", nil))
		for i, l := range got.Logs {
			if l.Time != want[i] || l.TimeNs != uint32(i) || len(l.Contents) != 2 || l.Contents[1] != [2]string{"k", "w"} {
				t.Errorf("%v: log %d is %+v, want time %d", times, i, l, want[i])
			}
		}
		// The split ranges still cut at log boundaries.
		for i := range times {
			if one := cvtParse(t, g.appendRange(nil, i, i+1, "", "", nil)); len(one.Logs) != 1 || one.Logs[0].Time != want[i] {
				t.Errorf("%v: range %d is %+v", times, i, one)
			}
		}
	}
	f([]uint32{lo, hi, lo + 5}, []uint32{lo, hi, lo + 5}, 0)
	f([]uint32{lo - 1, hi, hi + 1}, []uint32{repl, hi, repl}, 2)
	f([]uint32{0, 1, lo}, []uint32{repl, repl, lo}, 2) // shorter varints grow
	f([]uint32{0xFFFFFFFF}, []uint32{repl}, 1)
}

// The log times are checked against SLS's clock as its answers give it:
// here SLS's clock is an hour behind ours, and the first PutLogs fails
// (503) before the relay has seen an answer to a PutLogs; the retry of the
// same group carries times SLS takes.
func TestWriterTimesOnSLSClock(t *testing.T) {
	e := wtStart(t, nil)
	e.hook.skew.Store(int64(-time.Hour))
	e.hook.putSkew.Store(true) // the catalog's answers show our clock
	if _, err := e.s.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Status: 503, Count: 1}); err != nil {
		t.Fatal(err)
	}
	before := logFixes[svBadTime].Get()
	e.append(wtRecords("t", 5)) // a minute ago on our clock: 59 min ahead on SLS's
	e.svc.Start()
	e.waitFor("5 logs", func() bool { return len(e.stored()) == 5 })
	slsNow := time.Now().Add(-time.Hour).Unix()
	for _, l := range e.s.Logs(wtProject, wtLogstore) {
		if d := int64(l.Time) - slsNow; d > 5 || d < -30 {
			t.Errorf("log stored at %d, %d s from SLS's now", l.Time, d)
		}
	}
	if n := logFixes[svBadTime].Get() - before; n != 5 {
		t.Errorf("%d time fixes counted, want 5", n)
	}
	// The first attempt went with our times (nothing seen yet), the retry
	// with SLS's.
	e.hook.mu.Lock()
	times := slices.Clone(e.hook.times)
	e.hook.mu.Unlock()
	if len(times) != 10 {
		t.Fatalf("%d logs passed the hook, want 5 twice", len(times))
	}
	ourNow := time.Now().Unix()
	for i, sec := range times {
		ref := ourNow - 60
		if i >= 5 {
			ref = slsNow
		}
		if d := int64(sec) - ref; d > 5 || d < -30 {
			t.Errorf("attempt %d, log %d: time %d, %d s off", i/5+1, i%5, sec, d)
		}
	}
}

func TestNextBackoff(t *testing.T) {
	o := &Options{RetryInterval: time.Second, MaxRetryInterval: 30 * time.Second}
	var got []time.Duration
	var last time.Duration
	for range 7 {
		last = o.nextBackoff(last)
		got = append(got, last)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("back-off %v, want %v s", got, want)
		}
	}
	if d := o.nextBackoff(0); d != time.Second {
		t.Fatalf("a new run of failures starts its back-off at %v", d)
	}
}
