package shardwriter

import (
	"context"
	"sync"
	"time"
)

// pacer keeps writers under an SLS write quota (raw bytes and PutLogs
// requests per second): one per writer for its shard's quota, and one per
// project shared by the project's writers. It is a token bucket one second
// deep; a request larger than a second's bytes goes through and is paid
// for afterwards. A zero rate is no limit.
//
// A fixed pacer keeps its rates. An adaptive one (Options.Pace
// "adaptive") follows SLS's answers: a quota answer (quotaAnswer) cuts the
// rates to 90 % of what SLS accepted in the last second, at most once a
// second, and while the pacer holds writers back its rates grow — by 10 %
// a second until the first quota answer and while under 75 % of the rates
// at the last one, by 1 % a second after — so they settle just under the
// quota SLS enforces, with a quota answer every twenty seconds or so. A
// pacer cut below the rates it started at (a shard's soft quota) returns to
// them after paceRetryStart without a quota answer. Safe for concurrent
// use.
type pacer struct {
	adaptive bool

	// mu protects the fields below.
	mu                     sync.Mutex
	bytesPerSec, reqPerSec float64
	bytes, reqs            float64 // tokens
	at                     time.Time

	// What SLS accepted, by second (paceWindow of them, by Unix second
	// modulo paceWindow), and the pacer's start.
	secs    [paceWindow]acceptedSecond
	started time.Time
	cutAt   time.Time // the last cut; zero before the first
	// startBytes and startReqs are the rates it started at: a shard's
	// quota, which SLS calls soft; zero for a project's pacer.
	startBytes, startReqs float64
	// ceilBytes and ceilReqs are the rates at the last cut (where SLS
	// said enough): below paceFastBelow of them the rates grow fast.
	ceilBytes, ceilReqs float64
	grownAt             time.Time // the last growth
	held                bool      // a wait slept since the last growth
}

// Growth of an adaptive pacer's rates per second while it holds writers
// back: fast before SLS ever answered a quota code, slow after, so that the
// time between quota answers is long (see pacer).
const (
	paceWindow            = 4 // seconds kept; the last three full ones are measured
	paceGrowthBeforeQuota = 0.10
	paceGrowthAfterQuota  = 0.01
	paceCut               = 0.9
	// paceFastBelow: under this share of the rate at the last cut, rates
	// grow as fast as before any quota answer, so that a cut made on a
	// second SLS accepted little in (the relay was slow, not SLS) is made
	// good in seconds, not minutes.
	paceFastBelow = 0.75
	// paceRetryStart: a pacer cut below the rates it started at (a shard's
	// soft quota) goes back to them after this long without a quota
	// answer, so that a shard SLS throttled for a while is not slow long
	// after SLS stopped.
	paceRetryStart = 10 * time.Second
	// paceAdaptiveDepth is the depth, in seconds, of an adaptive pacer's
	// bucket once SLS answered a quota code.
	paceAdaptiveDepth = 0.2
)

// acceptedSecond is what SLS accepted in one second.
type acceptedSecond struct {
	unix        int64
	bytes, reqs float64
}

func newPacer(bytesPerSec, reqPerSec int, adaptive bool) *pacer {
	p := &pacer{bytesPerSec: float64(bytesPerSec), reqPerSec: float64(reqPerSec), adaptive: adaptive, started: time.Now()}
	p.startBytes, p.startReqs = p.bytesPerSec, p.reqPerSec
	p.bytes, p.reqs = p.bytesPerSec, p.reqPerSec
	return p
}

// wait blocks until a request of n bytes fits; false if ctx ended.
func (p *pacer) wait(ctx context.Context, n int) bool {
	for {
		need := p.take(n)
		if need == 0 {
			return true
		}
		if !sleepCtx(ctx, need) {
			return false
		}
	}
}

// take takes a request of n bytes and returns 0, or returns how long to
// wait before it fits.
func (p *pacer) take(n int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refill(time.Now())
	var need time.Duration
	if p.bytesPerSec > 0 && p.bytes <= 0 {
		need = max(need, time.Duration(-p.bytes/p.bytesPerSec*float64(time.Second))+time.Millisecond)
	}
	if p.reqPerSec > 0 && p.reqs < 1 {
		need = max(need, time.Duration((1-p.reqs)/p.reqPerSec*float64(time.Second))+time.Millisecond)
	}
	if need == 0 {
		p.bytes -= float64(n)
		p.reqs--
		return 0
	}
	p.held = true
	return need
}

// refill adds the tokens earned since the last request. mu is held.
func (p *pacer) refill(now time.Time) {
	if !p.at.IsZero() {
		el := now.Sub(p.at).Seconds()
		depth := 1.0 // seconds of tokens
		if p.adaptive && !p.cutAt.IsZero() {
			// Close to a quota SLS enforces: a burst after a late
			// wake-up would be refused.
			depth = paceAdaptiveDepth
		}
		p.bytes = min(p.bytesPerSec*depth, p.bytes+el*p.bytesPerSec)
		p.reqs = min(max(1, p.reqPerSec*depth), p.reqs+el*p.reqPerSec)
	}
	p.at = now
}

// charge takes a request of n bytes without waiting, so that others
// waiting on the pacer get only what is left.
func (p *pacer) charge(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refill(time.Now())
	p.bytes -= float64(n)
	p.reqs--
}

// accepted notes a request of n bytes SLS took, and grows an adaptive
// pacer's rates if it held writers back since the last growth.
func (p *pacer) accepted(n int) {
	if !p.adaptive {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	sec := &p.secs[now.Unix()%paceWindow]
	if sec.unix != now.Unix() {
		*sec = acceptedSecond{unix: now.Unix()}
	}
	sec.bytes += float64(n)
	sec.reqs++
	if p.grownAt.IsZero() {
		p.grownAt = now
		return
	}
	el := min(now.Sub(p.grownAt).Seconds(), 1)
	p.grownAt = now
	if !p.held {
		return
	}
	p.held = false
	if !p.cutAt.IsZero() && now.Sub(p.cutAt) >= paceRetryStart && (p.bytesPerSec < p.startBytes || p.reqPerSec < p.startReqs) {
		p.bytesPerSec, p.reqPerSec = max(p.bytesPerSec, p.startBytes), max(p.reqPerSec, p.startReqs)
		return
	}
	grow := func(rate, ceil float64) float64 {
		g := paceGrowthAfterQuota
		if rate < paceFastBelow*ceil || p.cutAt.IsZero() {
			g = paceGrowthBeforeQuota
		}
		return rate * (1 + g*el)
	}
	p.bytesPerSec = grow(p.bytesPerSec, p.ceilBytes)
	p.reqPerSec = grow(p.reqPerSec, p.ceilReqs)
}

// acceptedRate returns what SLS accepted per second over the last full
// seconds (up to paceWindow-1 of them). mu is held.
func (p *pacer) acceptedRate(now time.Time) (bytesPerSec, reqPerSec float64) {
	n := min(paceWindow-1, int64(now.Sub(p.started)/time.Second))
	if n <= 0 {
		return 0, 0
	}
	for i := int64(1); i <= n; i++ {
		if sec := p.secs[(now.Unix()-i)%paceWindow]; sec.unix == now.Unix()-i {
			bytesPerSec += sec.bytes
			reqPerSec += sec.reqs
		}
	}
	return bytesPerSec / float64(n), reqPerSec / float64(n)
}

// quotaAnswer cuts an adaptive pacer's rates after SLS answered a quota
// code: to paceCut of what SLS accepted over the last seconds (or of the
// current rate, when lower), at most once a second, so that the answers to
// requests already under way do not cut again. It reports whether it cut.
// Measured over seconds, not one: right after a cut, one second's accepted
// requests are fewer than the quota allows, and cutting to them would
// spiral down.
func (p *pacer) quotaAnswer() bool {
	if !p.adaptive {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if !p.cutAt.IsZero() && now.Sub(p.cutAt) < time.Second {
		return false
	}
	accBytes, accReqs := p.acceptedRate(now)
	cut := func(rate, accepted float64) float64 {
		if rate > 0 && (rate < accepted || accepted == 0) {
			accepted = rate
		}
		if accepted == 0 {
			return 0 // nothing to go by: no limit still
		}
		return max(paceCut*accepted, 1)
	}
	ceil := func(rate, accepted float64) float64 {
		if rate > 0 {
			return rate
		}
		return accepted
	}
	p.ceilBytes, p.ceilReqs = ceil(p.bytesPerSec, accBytes), ceil(p.reqPerSec, accReqs)
	p.bytesPerSec = cut(p.bytesPerSec, accBytes)
	p.reqPerSec = cut(p.reqPerSec, accReqs)
	p.bytes, p.reqs = min(p.bytes, 0), min(p.reqs, 0)
	p.cutAt, p.grownAt, p.held = now, now, false
	return true
}

// limited reports whether the pacer has a rate to hold writers to.
func (p *pacer) limited() bool {
	bps, rps := p.rates()
	return bps > 0 || rps > 0
}

// rates returns the current rates.
func (p *pacer) rates() (bytesPerSec, reqPerSec float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytesPerSec, p.reqPerSec
}
