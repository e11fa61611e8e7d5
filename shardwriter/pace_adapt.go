package shardwriter

import "time"

// Adaptive pacing: a pacer's rates come from what SLS accepted and
// refused, never from the timing of the relay's own sends, so that a
// loaded machine (late wake-ups, bursts) does not mislead it.
//
//   - A quota answer means SLS had no room left for the request: its
//     bucket for that quota was (next to) empty. Between two quota answers
//     SLS therefore accepted what its quota let in over that time, so the
//     bytes (requests) it accepted in between, divided by the time, is the
//     quota's rate (the estimate), whatever the relay's timing was. That
//     holds while SLS's bucket cannot fill up in between: a project's
//     quota is per minute (paceQuotaWindow). A shard's is per second, so a
//     shard's pacer goes by the rate SLS accepted at over the last seconds
//     instead (acceptingRate).
//   - Cut. On a quota answer the rates become paceCut of the estimate, or,
//     without one (the first answer, a shard), of the recent rate or of
//     the pacer's own when lower; never higher than they were. Answers
//     within paceMinEstimate of the last cut are to requests sent before
//     it and change nothing. A project's answer cuts the limit its message
//     names (quotaDim); a shard's, the limit nearer its starting rates.
//   - Probe. While the pacer holds writers back and they use its rate (SLS
//     accepted at least paceUsed of it over the last seconds), the rate
//     grows: by paceGrowthFast a second before any quota answer; after
//     one, by paceProbe of the estimate a second up to paceProbeUpTo of it
//     (slow: cut to 95 %, SLS's minute of quota fills a little while the
//     rate is under the quota and runs out only about 40 s after the cut,
//     so that one request in hundreds is refused), and by paceGrowthFast
//     again past that, where SLS took more than the estimate for a while
//     (the quota grew). Growth is by the time since the last, so a
//     project's writers, sharing its pacer, probe as one: two of them do
//     not double it.
//   - A pacer cut below the rates it started at (a shard's quota, which
//     SLS calls soft) returns to them after paceRetryStart without a quota
//     answer (retryStart).

const (
	// paceCut is the share of the estimated quota a quota answer cuts to.
	paceCut = 0.95
	// paceProbe is the growth a second, as a share of the estimate, up to
	// paceProbeUpTo of it: from paceCut to the quota in 20 s, and as long
	// again for SLS's minute of quota to run out (this file's comment).
	paceProbe     = 0.0025
	paceProbeUpTo = 1.05
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
	paceRetryStartMax = 80 * time.Second
	paceRetryHeld     = 3 * time.Second
)

// accepted notes a request of n bytes SLS took, and grows an adaptive
// pacer's rates (this file's comment) if it held writers back since the last growth.
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
	seconds := p.fullSeconds(now)
	for i := range p.lim {
		p.lim[i].grow(now, seconds, el, p.emptyAt.IsZero())
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

// grow grows the rate for el seconds held back, if the writers used it.
func (l *paceLimit) grow(now time.Time, seconds int64, el float64, beforeQuota bool) {
	if l.rate == 0 || (seconds > 0 && l.acceptedRate(now, seconds) < paceUsed*l.rate) {
		return
	}
	if !beforeQuota && l.est > 0 && l.rate < paceProbeUpTo*l.est {
		l.rate = min(l.rate+paceProbe*l.est*el, paceProbeUpTo*l.est)
		return
	}
	l.rate *= 1 + paceGrowthFast*el
}

// quotaAnswer cuts an adaptive pacer's limits dim names after SLS answered
// a quota code (this file's comment). It reports whether it cut.
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

// hasStart reports whether the pacer started with rates: a shard's (one
// whose rates are off, sls.shard_bytes_per_sec and
// sls.shard_requests_per_sec negative, is paced as a project's). mu is
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
