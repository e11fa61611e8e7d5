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
// A fixed pacer keeps its rates. An adaptive one (Options.Pace "adaptive")
// takes them from SLS's answers, never from the timing of its own sends, so
// that a loaded machine (late wake-ups, bursts) does not mislead it:
//
//   - Estimate. A quota answer means SLS had no room left for the request:
//     its bucket for that quota was (next to) empty. From one quota answer
//     to the next, SLS therefore accepted what its quota let in over that
//     time, so the bytes (requests) it accepted in between, divided by the
//     time, is the quota's rate. That holds while SLS's bucket cannot fill
//     up in between (a project's quota is per minute, see paceQuotaWindow);
//     past that it is a lower bound.
//   - Cut. On a quota answer the rates become paceCut of that estimate (of
//     what SLS accepted over the last seconds when there is none yet, as at
//     the first answer), never higher than they were. Answers within
//     paceMinEstimate of the last cut are to requests sent before it: they
//     change nothing.
//   - Probe. While the pacer holds writers back and they use its rate (SLS
//     accepted at least paceUsed of it over the last seconds), the rate
//     grows: by paceGrowthFast a second before any quota answer; after one,
//     by paceProbe of the estimate a second up to paceProbeUpTo of it
//     (slow, so that SLS's minute of quota, filled a little while the rate
//     is under it, runs out only every half a minute or so: one refused
//     request in hundreds), and by paceGrowthFast again past that, where
//     SLS has taken more than the estimate for a while (the quota grew).
//     Growth is by the time since the last, so a project's writers, sharing
//     its pacer, probe as one: two of them do not double the growth.
//   - A pacer cut below the rates it started at (a shard's quota, which SLS
//     calls soft) returns to them after paceRetryStart without a quota
//     answer.
//
// Safe for concurrent use.
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

// acceptMark is a limit's total accepted after an acceptance at at.
type acceptMark struct {
	at    time.Time
	total float64
}

// acceptedSecond is what SLS accepted of a limit in one second.
type acceptedSecond struct {
	unix int64
	n    float64
}

// paceDim names the limits a quota answer is about.
type paceDim int

const (
	paceBytes paceDim = iota
	paceRequests
	paceBoth
)

const (
	paceWindow = 6 // seconds kept; the last five full ones are measured
	// paceMarks marks at least paceMarkEvery apart cover paceWindow.
	paceMarks     = 64
	paceMarkEvery = 100 * time.Millisecond
	// paceCut is the share of the estimated quota a quota answer cuts to.
	paceCut = 0.95
	// paceProbe is the growth a second, as a share of the estimate, up to
	// paceProbeUpTo of it: from paceCut to the quota in 20 s, and as long
	// again for SLS's minute of quota to run out (see pacer).
	paceProbe     = 0.0025
	paceProbeUpTo = 1.05
	// paceProbeShard is paceProbe for a shard's pacer: its quota is per
	// second, so there is no minute of quota to spend before SLS answers,
	// and its estimate, from the last seconds alone, is coarse with large
	// LogGroups.
	paceProbeShard = 0.01
	// paceGrowthFast is the growth a second before any quota answer, and
	// past paceProbeUpTo of the estimate.
	paceGrowthFast = 0.10
	// paceUsed: a limit grows only while SLS accepted at least this share
	// of its rate over the last seconds, so that a rate the writers do not
	// reach (a slow relay, not SLS, holds them) does not run ahead of them
	// and release a burst later.
	paceUsed = 0.7
	// paceMinEstimate is the least time between two quota answers to
	// estimate the quota from; quota answers closer to the last cut are to
	// requests sent before it.
	paceMinEstimate = time.Second
	// paceQuotaWindow: SLS's project quotas are per minute ("100 GB/min",
	// "600,000 times/min": https://www.alibabacloud.com/help/en/sls/basic-resources,
	// "Data read and write"), and the stand-in meters them with a bucket a
	// minute deep (bench/slsfake/quota.go); SLS does not say how its minute
	// is counted. Two quota answers further apart than that may have
	// quota in between that nobody used: then the estimate is from what SLS
	// accepted over the last seconds instead.
	paceQuotaWindow = time.Minute
	// paceRetryStart: a pacer cut below the rates it started at (a shard's
	// soft quota) goes back to them after this long without a quota
	// answer, so that a shard SLS throttled for a while is not slow long
	// after SLS stopped; twice as long after each return SLS refused, up
	// to paceRetryStartMax. A return lasts when paceRetryHeld passed
	// without a quota answer.
	paceRetryStart    = 10 * time.Second
	paceRetryStartMax = 20 * time.Second
	paceRetryHeld     = 3 * time.Second
	// paceAdaptiveDepth is the depth, in seconds, of an adaptive pacer's
	// bucket once SLS answered a quota code: close to a quota SLS
	// enforces, a burst after a late wake-up would be refused.
	paceAdaptiveDepth = 0.2
)

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
	p.refill(time.Now())
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
	return need
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

// accepted notes a request of n bytes SLS took, and grows an adaptive
// pacer's rates (see pacer) if it held writers back since the last growth.
func (p *pacer) accepted(n int) {
	if !p.adaptive {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for i, c := range [2]float64{float64(n), 1} {
		p.lim[i].note(now, c)
	}
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
	if p.retryStart(now) {
		return
	}
	seconds, probe := p.fullSeconds(now), paceProbe
	if p.hasStart() {
		probe = paceProbeShard
	}
	for i := range p.lim {
		p.lim[i].grow(now, seconds, el, p.emptyAt.IsZero(), probe)
	}
}

// retryStart returns a pacer cut below the rates it started at to them
// once retryEvery passed since the last quota answer, and reports whether
// it did; a return that lasted paceRetryHeld without a quota answer makes
// them its rates again (what SLS refused for has passed), one that SLS
// answers with a quota code sooner goes back to the rates before it and
// waits twice as long for the next (quotaAnswer). mu is held.
func (p *pacer) retryStart(now time.Time) bool {
	if !p.retriedAt.IsZero() {
		if now.Sub(p.retriedAt) >= paceRetryHeld {
			p.retriedAt, p.retryEvery = time.Time{}, 0
			for i := range p.lim {
				p.lim[i].est = 0 // grow fast, as before any quota answer
			}
		}
		return false
	}
	b, r := &p.lim[paceBytes], &p.lim[paceRequests]
	if p.emptyAt.IsZero() || (b.rate >= b.start && r.rate >= r.start) {
		return false
	}
	if p.retryEvery == 0 {
		p.retryEvery = paceRetryStart
	}
	if now.Sub(p.emptyAt) < p.retryEvery {
		return false
	}
	p.retriedAt = now
	for i := range p.lim {
		l := &p.lim[i]
		l.beforeRetry, l.rate = l.rate, max(l.rate, l.start)
	}
	return true
}

// note counts c accepted at now.
func (l *paceLimit) note(now time.Time, c float64) {
	sec := &l.secs[now.Unix()%paceWindow]
	if sec.unix != now.Unix() {
		*sec = acceptedSecond{unix: now.Unix()}
	}
	sec.n += c
	l.total += c
	if l.marked > 0 && now.Sub(l.marks[l.newest].at) < paceMarkEvery {
		l.marks[l.newest] = acceptMark{now, l.total}
		return
	}
	l.newest = (l.newest + 1) % paceMarks
	l.marks[l.newest] = acceptMark{now, l.total}
	l.marked = min(l.marked+1, paceMarks)
}

// acceptingRate returns the rate SLS accepted at from the first to the
// last acceptance of the last paceWindow-1 seconds, 0 with fewer than two:
// unlike a count by whole seconds, it does not depend on how large
// requests fall into seconds.
func (l *paceLimit) acceptingRate(now time.Time) float64 {
	newest := l.marks[l.newest]
	oldest := newest
	for i := 1; i < l.marked; i++ {
		m := l.marks[(l.newest-i+paceMarks)%paceMarks]
		if now.Sub(m.at) > (paceWindow-1)*time.Second {
			break
		}
		oldest = m
	}
	if span := newest.at.Sub(oldest.at).Seconds(); span > 0 {
		return (newest.total - oldest.total) / span
	}
	return 0
}

// grow grows the rate for el seconds held back, if the writers used it.
func (l *paceLimit) grow(now time.Time, seconds int64, el float64, beforeQuota bool, probe float64) {
	if l.rate == 0 || (seconds > 0 && l.acceptedRate(now, seconds) < paceUsed*l.rate) {
		return
	}
	if !beforeQuota && l.est > 0 && l.rate < paceProbeUpTo*l.est {
		l.rate = min(l.rate+probe*l.est*el, paceProbeUpTo*l.est)
		return
	}
	l.rate *= 1 + paceGrowthFast*el
}

// fullSeconds returns how many full seconds back acceptedRate measures.
func (p *pacer) fullSeconds(now time.Time) int64 {
	return min(paceWindow-1, int64(now.Sub(p.started)/time.Second))
}

// acceptedRate returns what SLS accepted per second over the last n full
// seconds.
func (l *paceLimit) acceptedRate(now time.Time, n int64) float64 {
	if n <= 0 {
		return 0
	}
	var sum float64
	for i := int64(1); i <= n; i++ {
		if sec := l.secs[(now.Unix()-i)%paceWindow]; sec.unix == now.Unix()-i {
			sum += sec.n
		}
	}
	return sum / float64(n)
}

// quotaAnswer cuts an adaptive pacer's limits dim names after SLS answered
// a quota code (see pacer). It reports whether it cut.
func (p *pacer) quotaAnswer(dim paceDim) bool {
	if !p.adaptive {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	since := now.Sub(p.emptyAt)
	if !p.emptyAt.IsZero() && since < paceMinEstimate {
		return false
	}
	retried := !p.retriedAt.IsZero()
	if retried {
		// SLS still refuses the starting rates: back to the rates before,
		// and wait longer for the next return.
		p.retriedAt, p.retryEvery = time.Time{}, min(2*p.retryEvery, paceRetryStartMax)
	}
	seconds := p.fullSeconds(now)
	if dim == paceBoth {
		dim = p.nearerStart(now, seconds)
	}
	// A shard's quota is per second: SLS's bucket for it fills up within
	// about a second, so what it accepted between two quota answers is no
	// estimate of the quota.
	estimate := !p.emptyAt.IsZero() && since <= paceQuotaWindow && !p.hasStart()
	for i := range p.lim {
		l := &p.lim[i]
		switch {
		case retried:
			l.rate, l.tokens = l.beforeRetry, min(l.tokens, 0)
		case dim == paceBoth || dim == paceDim(i):
			l.est = 0
			if estimate {
				l.est = (l.total - l.atEmpty) / since.Seconds()
			}
			l.cut(now, seconds)
		}
		l.atEmpty = l.total
	}
	p.emptyAt, p.grownAt, p.held = now, now, false
	return true
}

// hasStart reports whether the pacer started with rates (a shard's). mu is
// held.
func (p *pacer) hasStart() bool {
	return p.lim[paceBytes].start > 0 || p.lim[paceRequests].start > 0
}

// nearerStart returns the limit of which SLS accepted the larger share of
// the rate the pacer started at over the last seconds, paceBoth if it
// started with no rates (a project's). A shard's quota answer does not say
// which limit SLS counted against ("shard write quota exceed, shard:
// xxx"); the one nearer SLS's documented per-shard limit (the starting
// rates) is the likelier, and cutting the other would make it the limit
// that holds the writers, at what SLS accepted of it: a slow limit would
// then hold them under a quota SLS does not have.
func (p *pacer) nearerStart(now time.Time, seconds int64) paceDim {
	b, r := &p.lim[paceBytes], &p.lim[paceRequests]
	if b.start <= 0 || r.start <= 0 {
		return paceBoth
	}
	if b.acceptedRate(now, seconds)/b.start >= r.acceptedRate(now, seconds)/r.start {
		return paceBytes
	}
	return paceRequests
}

// cut sets the rate to paceCut of the estimate, never raising it; without
// an estimate, to paceCut of what SLS accepted over the last seconds or of
// the rate, whichever is lower. Without anything to go by a limit stays
// off.
func (l *paceLimit) cut(now time.Time, seconds int64) {
	basis := l.est
	if basis == 0 {
		basis = l.acceptingRate(now)
		if basis == 0 {
			basis = l.acceptedRate(now, seconds)
		}
		if l.rate > 0 && (basis == 0 || l.rate < basis) {
			basis = l.rate
		}
	}
	if basis == 0 {
		return
	}
	r := max(paceCut*basis, 1)
	if l.rate > 0 {
		r = min(r, l.rate)
	}
	l.rate, l.tokens = r, min(l.tokens, 0)
	if l.est == 0 {
		l.est = basis // the scale of the probe
	}
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
