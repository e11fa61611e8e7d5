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
// for afterwards. A zero rate is no limit. A fixed pacer keeps its rates;
// an adaptive one (Options.Pace "adaptive") takes them from what SLS
// accepted and refused (pace_adapt.go). Safe for concurrent use.
type pacer struct {
	adaptive bool

	// mu protects the fields below.
	mu sync.Mutex
	// lim holds the two limits, raw bytes (paceBytes) and requests
	// (paceRequests).
	lim     [2]paceLimit
	at      time.Time // the last refill
	started time.Time
	// emptyAt is the last quota answer that cut (zero before the first):
	// SLS's bucket was empty then, and each limit's atEmpty is what it had
	// accepted by then.
	emptyAt time.Time
	grownAt time.Time // the last growth
	held    bool      // a wait slept since the last growth
	// retriedAt is when the pacer returned to its starting rates, until
	// that lasted paceRetryHeld or SLS answered a quota code; retryEvery,
	// how long after a quota answer it returns (0: paceRetryStart).
	retriedAt  time.Time
	retryEvery time.Duration
}

// paceLimit is one of a pacer's limits: raw bytes or requests a second.
type paceLimit struct {
	rate   float64 // 0: no limit
	tokens float64
	// start is the rate the pacer started at; est the quota SLS's answers
	// imply (0: not known).
	start, est float64
	// total is what SLS accepted since the pacer started; atEmpty, by the
	// last cut.
	total, atEmpty float64
	beforeRetry    float64                    // the rate before the last return to start
	secs           [paceWindow]acceptedSecond // by Unix second modulo paceWindow
	// marks are total after the acceptances of the last seconds, at
	// least paceMarkEvery apart (later ones within that are merged into
	// the newest), in a ring; newest is the newest's index, marked how
	// many are set.
	marks          [paceMarks]acceptMark
	newest, marked int
}

// paceDim names the limits a quota answer is about.
type paceDim int

const (
	paceBytes paceDim = iota
	paceRequests
	paceBoth
)

const (
	// paceAdaptiveDepth is the depth, in seconds, of an adaptive pacer's
	// bucket once SLS answered a quota code: close to a quota SLS
	// enforces, a burst after a late wake-up would be refused.
	paceAdaptiveDepth = 0.2
)

// newPacer returns a pacer held to bytesPerSec and reqPerSec (0: no
// limit), the rates an adaptive one starts at: a shard's quota, or none
// for a project's.
func newPacer(bytesPerSec, reqPerSec int, adaptive bool) *pacer {
	p := &pacer{adaptive: adaptive, started: time.Now()}
	for i, r := range [2]float64{float64(bytesPerSec), float64(reqPerSec)} {
		p.lim[i] = paceLimit{rate: r, tokens: r, start: r}
	}
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
	now := time.Now()
	p.refill(now)
	if p.adaptive {
		// Not only on an acceptance: a shard cut to a trickle (SLS had
		// accepted little in the seconds before its quota answer, as
		// after an outage) may not send again for minutes, and would
		// never see one.
		p.retryStart(now)
	}
	var need time.Duration
	for i := range p.lim {
		if l := &p.lim[i]; l.rate > 0 && l.tokens < 1 {
			need = max(need, time.Duration((1-l.tokens)/l.rate*float64(time.Second))+time.Millisecond)
		}
	}
	if need == 0 {
		p.spend(n)
		return 0
	}
	p.held = true
	// Waits are re-taken at least every second, so that a return to the
	// starting rates (retryStart) ends one.
	return min(need, time.Second)
}

// refill adds the tokens earned since the last request. mu is held.
func (p *pacer) refill(now time.Time) {
	if !p.at.IsZero() {
		el := now.Sub(p.at).Seconds()
		depth := 1.0 // seconds of tokens
		if p.adaptive && !p.emptyAt.IsZero() {
			depth = paceAdaptiveDepth
		}
		for i := range p.lim {
			l := &p.lim[i]
			l.tokens = min(max(1, l.rate*depth), l.tokens+el*l.rate)
		}
	}
	p.at = now
}

// spend takes a request of n bytes from the limits that are on (an
// unlimited one runs up no debt). mu is held.
func (p *pacer) spend(n int) {
	for i, c := range [2]float64{float64(n), 1} {
		if l := &p.lim[i]; l.rate > 0 {
			l.tokens -= c
		}
	}
}

// charge takes a request of n bytes without waiting, so that others
// waiting on the pacer get only what is left.
func (p *pacer) charge(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refill(time.Now())
	p.spend(n)
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
	return p.lim[paceBytes].rate, p.lim[paceRequests].rate
}
