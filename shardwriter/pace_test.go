package shardwriter

import (
	"context"
	sls "github.com/aliyun/aliyun-log-go-sdk"
	"math"
	"testing"
	"time"
)

// The pacer holds a writer to its rates: after the first second's burst,
// requests are spaced by the slower of the two limits.
func TestPacerHoldsRates(t *testing.T) {
	f := func(name string, bytesPerSec, reqPerSec, size, n int, minElapsed time.Duration) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			p := newPacer(bytesPerSec, reqPerSec, false)
			start := time.Now()
			for i := 0; i < n; i++ {
				if !p.wait(context.Background(), size) {
					t.Fatal("wait failed")
				}
			}
			if el := time.Since(start); el < minElapsed {
				t.Fatalf("%d requests of %d bytes took %v, want at least %v", n, size, el, minElapsed)
			}
		})
	}
	// 100 requests/s: a burst of 100, then 50 more take ≥ 0.5 s.
	f("request rate", 0, 100, 10, 150, 450*time.Millisecond)
	// 1 MB/s in 100 kB requests: 10 free, 5 more take ≥ 0.5 s.
	f("byte rate", 1_000_000, 0, 100_000, 16, 450*time.Millisecond)

	p := newPacer(1, 0, false)
	p.wait(context.Background(), 10) // deep in debt now
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if p.wait(ctx, 1) {
		t.Fatal("wait returned true after its context ended")
	}
}

// acceptedFor sets what SLS accepted over the last full seconds before
// now (all that acceptedRate measures), bytes and requests a second each.
func (p *pacer) acceptedFor(now time.Time, bytesPerSec, reqPerSec float64) {
	p.started = now.Add(-10 * time.Second)
	for i := int64(1); i < paceWindow; i++ {
		u := now.Unix() - i
		p.lim[paceBytes].secs[u%paceWindow] = acceptedSecond{unix: u, n: bytesPerSec}
		p.lim[paceRequests].secs[u%paceWindow] = acceptedSecond{unix: u, n: reqPerSec}
	}
}

// An adaptive pacer cuts its rates on a quota answer. A project's: to 95 %
// of what SLS accepted since the last quota answer, a second or up to a
// minute before (the quota's rate: SLS's bucket was empty at both), never
// raising them; without one, to 95 % of what SLS accepted over the last
// full seconds or of its own rate when lower; only the limits the answer
// names. A shard's (its quota per second) always as without one, and only
// the limit of which SLS accepted the larger share of the starting rate.
// At most once a second. An unlimited one with nothing accepted stays
// unlimited (the writer then backs off instead).
func TestAdaptivePacerCuts(t *testing.T) {
	type state struct {
		start                   [2]int     // a shard's starting rates
		rate                    [2]float64 // a project's rates
		recentBytes, recentReqs float64    // accepted a second, last seconds
		lastCut                 time.Duration
		sinceBytes, sinceReqs   float64 // accepted since the last cut
	}
	f := func(name string, st state, dim paceDim, wantBytes, wantReqs float64) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			p := newPacer(st.start[0], st.start[1], true)
			if st.start == [2]int{} {
				p.lim[paceBytes].rate, p.lim[paceRequests].rate = st.rate[0], st.rate[1]
			}
			now := time.Now()
			p.acceptedFor(now, st.recentBytes, st.recentReqs)
			if st.lastCut > 0 {
				p.emptyAt = now.Add(-st.lastCut)
				p.lim[paceBytes].total, p.lim[paceRequests].total = st.sinceBytes, st.sinceReqs
			}
			if !p.quotaAnswer(dim) {
				t.Fatal("the quota answer did not cut")
			}
			if b, r := p.rates(); math.Abs(b-wantBytes) > wantBytes/1000 || math.Abs(r-wantReqs) > 0.01 {
				t.Fatalf("rates after the cut: %.0f B/s, %.2f req/s; want %.0f, %.2f", b, r, wantBytes, wantReqs)
			}
			if p.quotaAnswer(dim) {
				t.Fatal("a second quota answer within a second cut again")
			}
		})
	}
	shard := func(bps, rps int, recentBytes, recentReqs float64) state {
		return state{start: [2]int{bps, rps}, recentBytes: recentBytes, recentReqs: recentReqs}
	}
	f("shard: bytes, to what SLS accepted", shard(5_000_000, 500, 1_000_000, 10), paceBoth, 950_000, 500)
	f("shard: requests, to what SLS accepted", shard(5_000_000, 500, 100_000, 400), paceBoth, 5_000_000, 380)
	f("shard: to its own rate, when lower", shard(500_000, 50, 1_000_000, 1), paceBoth, 475_000, 50)
	shardSince := shard(5_000_000, 500, 300_000, 3)
	shardSince.lastCut, shardSince.sinceBytes, shardSince.sinceReqs = 10*time.Second, 1_000_000, 10
	f("shard: not from what SLS accepted since the last", shardSince, paceBoth, 285_000, 500)

	first := func(recentBytes, recentReqs float64) state {
		return state{recentBytes: recentBytes, recentReqs: recentReqs}
	}
	f("project: first, from what SLS accepted", first(2_000_000, 20), paceBoth, 1_900_000, 19)
	f("project: first, nothing accepted", first(0, 0), paceBoth, 0, 0)
	f("project: first, bytes only (inflow)", first(2_000_000, 20), paceBytes, 1_900_000, 0)
	f("project: first, requests only (qps)", first(2_000_000, 20), paceRequests, 0, 19)
	// SLS accepted 1 MB in 100 requests in the 10 s since the last cut,
	// 300 kB/s over the last seconds (its minute's quota running out).
	since := func(rate [2]float64, lastCut time.Duration) state {
		return state{rate: rate, recentBytes: 300_000, recentReqs: 30,
			lastCut: lastCut, sinceBytes: 1_000_000, sinceReqs: 100}
	}
	f("project: to what SLS accepted since the last", since([2]float64{400_000, 40}, 10*time.Second), paceBoth, 95_000, 9.5)
	f("project: since the last, 1 s", since([2]float64{}, time.Second), paceBoth, 950_000, 95)
	f("project: never raised by the estimate", since([2]float64{50_000, 5}, 10*time.Second), paceBoth, 50_000, 5)
	f("project: the last over a minute ago", since([2]float64{400_000, 40}, 61*time.Second), paceBoth, 285_000, 28.5)
}

// A shard's pacer cut below its starting rates returns to them after
// paceRetryStart without a quota answer; a quota answer within
// paceRetryHeld of that brings back the rates before and doubles the wait
// for the next return (up to paceRetryStartMax); a return that lasts
// paceRetryHeld stays.
func TestAdaptivePacerRetriesStart(t *testing.T) {
	p := newPacer(5_000, 0, true)
	now := time.Now()
	p.acceptedFor(now, 100, 0)
	p.lim[paceBytes].rate, p.lim[paceBytes].est = 100, 100
	p.emptyAt, p.grownAt, p.held = now.Add(-paceRetryStart-time.Second), now.Add(-time.Second), true
	p.accepted(10)
	if b, _ := p.rates(); b != 5_000 {
		t.Fatalf("rate %.0f B/s after a quiet %v, want the start's 5000", b, paceRetryStart)
	}
	if !p.quotaAnswer(paceBoth) {
		t.Fatal("the quota answer to the return did not count")
	}
	if b, _ := p.rates(); b != 100 || p.retryEvery != 2*paceRetryStart {
		t.Fatalf("after SLS refused the return: %.0f B/s, next in %v; want 100, %v", b, p.retryEvery, 2*paceRetryStart)
	}
	p.emptyAt, p.held = now.Add(-2*paceRetryStart-time.Second), true
	p.accepted(10)
	p.retriedAt, p.held = now.Add(-paceRetryHeld-time.Second), true
	p.accepted(10)
	if b, _ := p.rates(); b != 5_000 || !p.retriedAt.IsZero() || p.retryEvery != 0 || p.lim[paceBytes].est != 0 {
		t.Fatalf("after a return that lasted: %.0f B/s, retried at %v, next in %v, estimate %.0f; want 5000, none, the first, none",
			b, p.retriedAt, p.retryEvery, p.lim[paceBytes].est)
	}
}

// A shard cut to a trickle (SLS accepted little before its quota answer,
// as after an outage) returns to its starting rates while a writer waits,
// with no acceptance to trigger it: a 16 KiB request at 180 B/s would
// otherwise wait 90 s, and nothing would undo the cut before it went.
func TestAdaptivePacerReturnsWhileWaiting(t *testing.T) {
	p := newPacer(5<<20, 500, true)
	now := time.Now()
	p.lim[paceBytes].rate, p.lim[paceBytes].est, p.lim[paceBytes].tokens = 180, 180, -16<<10
	// The cut was a little under paceRetryStart ago.
	p.emptyAt, p.grownAt = now.Add(-paceRetryStart+1500*time.Millisecond), now
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if !p.wait(ctx, 16<<10) {
		t.Fatal("the request still waited 10 s after the cut was due to end")
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("the request went after %v, before the return was due", el)
	}
	if b, _ := p.rates(); b != 5<<20 {
		t.Fatalf("rate %.0f B/s after the return, want the start's %d", b, 5<<20)
	}
}

// While an adaptive pacer holds writers back its rates grow: 10 % a second
// before the first quota answer.
func TestAdaptivePacerGrows(t *testing.T) {
	p := newPacer(0, 10, true)
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond {
		if !p.wait(context.Background(), 1) {
			t.Fatal("wait failed")
		}
		p.accepted(1)
	}
	if _, r := p.rates(); r < 10.5 || r > 12 {
		t.Fatalf("after 1.5 s held back at 10 req/s the rate is %.2f, want about 11.5", r)
	}
}

// After a quota answer, a held limit grows by 0.25 % of the estimate a
// second up to 105 % of it and by 10 % a second past that; one that SLS
// accepted under 70 % of over the last seconds (the writers do not reach
// it) does not grow.
func TestAdaptivePacerProbes(t *testing.T) {
	f := func(name string, rate, est, recent, want float64) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			p := newPacer(0, 0, true)
			now := time.Now()
			p.acceptedFor(now, recent, 0)
			p.lim[paceBytes].rate, p.lim[paceBytes].est = rate, est
			p.emptyAt, p.grownAt, p.held = now.Add(-5*time.Second), now.Add(-time.Second), true
			p.accepted(0)
			if b, _ := p.rates(); math.Abs(b-want) > 10 {
				t.Fatalf("rate %.0f B/s after a second held back, want %.0f", b, want)
			}
		})
	}
	f("slowly under the estimate", 95_000, 100_000, 95_000, 95_250)
	f("up to 105 % of it", 104_900, 100_000, 104_900, 105_000)
	f("fast past it", 110_000, 100_000, 110_000, 121_000)
	f("not while unused", 95_000, 100_000, 60_000, 95_000)
}

// The rate SLS accepted at is measured from acceptance to acceptance over
// the last seconds, so large requests do not make it depend on how they
// fall into whole seconds; one acceptance gives none.
func TestPacerAcceptingRate(t *testing.T) {
	f := func(name string, every time.Duration, n int, size, want float64) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			var l paceLimit
			now := time.Now()
			for i := n - 1; i >= 0; i-- {
				l.note(now.Add(-time.Duration(i)*every), size)
			}
			if got := l.acceptingRate(now); math.Abs(got-want) > want/1000+1e-9 {
				t.Fatalf("%.1f a second, want %.1f", got, want)
			}
		})
	}
	f("80 kB every 0.8 s", 800*time.Millisecond, 7, 80_000, 100_000)
	f("1 kB every 10 ms (merged marks)", 10*time.Millisecond, 300, 1_000, 100_000)
	f("older than the window left out", 2*time.Second, 6, 10, 5)
	f("one acceptance", time.Second, 1, 80_000, 0)
}

// A WriteQuotaExceed's message names the project quota SLS refused for,
// in the throttling page's words and the limits page's older ones.
func TestQuotaDim(t *testing.T) {
	f := func(msg string, want paceDim) {
		t.Helper()
		if got := quotaDim(&sls.Error{HTTPCode: 403, Code: "WriteQuotaExceed", Message: msg}); got != want {
			t.Fatalf("%q: %d, want %d", msg, got, want)
		}
	}
	f("Project write quota exceed: inflow: 1666", paceBytes)
	f("Project write quota exceed: qps: 474", paceRequests)
	f("Inflow Quota Exceed", paceBytes)
	f("Write QPS Exceed", paceRequests)
	f("Write quota is exceeded.", paceBoth)
}

// A project's writers share its pacer and probe as one: growth is by the
// time since the last, so two writers' answers arriving together grow the
// rate as much as one's.
func TestAdaptivePacerProbesAsOne(t *testing.T) {
	p := newPacer(0, 0, true)
	now := time.Now()
	p.acceptedFor(now, 95_000, 0)
	p.lim[paceBytes].rate, p.lim[paceBytes].est = 95_000, 100_000
	p.emptyAt, p.grownAt = now.Add(-5*time.Second), now.Add(-time.Second)
	for range 2 { // two writers, each held back, answered at once
		p.held = true
		p.accepted(0)
	}
	if b, _ := p.rates(); b < 95_250 || b > 95_251 {
		t.Fatalf("rate %.0f B/s after two writers' answers a second after the last growth, want 95250 (one second's)", b)
	}
}
