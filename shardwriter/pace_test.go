package shardwriter

import (
	"context"
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

// An adaptive pacer cuts its rates on a quota answer to 90 % of what SLS
// accepted over the last full seconds (or of its own rate when lower), at
// most once a second; an unlimited one with nothing accepted stays
// unlimited (the writer then backs off instead).
func TestAdaptivePacerCuts(t *testing.T) {
	f := func(name string, bytesPerSec, reqPerSec int, acceptedBytes, acceptedReqs float64, wantBytes, wantReqs float64) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			p := newPacer(bytesPerSec, reqPerSec, true)
			now := time.Now()
			p.started = now.Add(-10 * time.Second)
			// The last three full seconds accepted the same each.
			for i := int64(1); i <= 3; i++ {
				u := now.Unix() - i
				p.secs[u%paceWindow] = acceptedSecond{unix: u, bytes: acceptedBytes, reqs: acceptedReqs}
			}
			if !p.quotaAnswer() {
				t.Fatal("the first quota answer did not cut")
			}
			if b, r := p.rates(); math.Abs(b-wantBytes) > 1 || math.Abs(r-wantReqs) > 0.01 {
				t.Fatalf("rates after the cut: %.0f B/s, %.2f req/s; want %.0f, %.2f", b, r, wantBytes, wantReqs)
			}
			if p.quotaAnswer() {
				t.Fatal("a second quota answer within a second cut again")
			}
		})
	}
	f("to what SLS accepted", 5_000_000, 500, 1_000_000, 100, 900_000, 90)
	f("to its own rate, when lower", 500_000, 50, 1_000_000, 100, 450_000, 45)
	f("unlimited, from what SLS accepted", 0, 0, 2_000_000, 20, 1_800_000, 18)
	f("unlimited, nothing accepted", 0, 0, 0, 0, 0, 0)
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

// A pacer cut below the rates it started at (a shard's soft quota) goes
// back to them once paceRetryStart passed without a quota answer; one
// without starting rates (a project's) does not.
func TestAdaptivePacerReturnsToStart(t *testing.T) {
	f := func(name string, start int, wantBytes float64) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			p := newPacer(start, 0, true)
			now := time.Now()
			p.bytesPerSec, p.ceilBytes = 100, 110
			p.cutAt, p.grownAt, p.held = now.Add(-paceRetryStart-time.Second), now.Add(-time.Second), true
			p.accepted(10)
			if b, _ := p.rates(); math.Abs(b-wantBytes) > 1 {
				t.Fatalf("rate %.0f B/s after a quiet %v, want %.0f", b, paceRetryStart, wantBytes)
			}
		})
	}
	f("shard", 5_000, 5_000)
	f("project", 0, 101) // grown by 1 % in its quiet second instead
}
