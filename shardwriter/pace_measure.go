package shardwriter

import "time"

// What SLS accepted of a pacer's limit, measured two ways: by whole
// seconds (acceptedRate) and from acceptance to acceptance
// (acceptingRate).

const (
	paceWindow = 6 // seconds kept; the last five full ones are measured
	// paceMarks marks at least paceMarkEvery apart cover paceWindow.
	paceMarks     = 64
	paceMarkEvery = 100 * time.Millisecond
)

// acceptMark is a limit's total accepted after an acceptance at at; the
// acceptances since opened are merged into it.
type acceptMark struct {
	opened, at time.Time
	total      float64
}

// acceptedSecond is what SLS accepted of a limit in one second.
type acceptedSecond struct {
	unix int64
	n    float64
}

// note counts c accepted at now.
func (l *paceLimit) note(now time.Time, c float64) {
	sec := &l.secs[now.Unix()%paceWindow]
	if sec.unix != now.Unix() {
		*sec = acceptedSecond{unix: now.Unix()}
	}
	sec.n += c
	l.total += c
	if m := &l.marks[l.newest]; l.marked > 0 && now.Sub(m.opened) < paceMarkEvery {
		m.at, m.total = now, l.total
		return
	}
	l.newest = (l.newest + 1) % paceMarks
	l.marks[l.newest] = acceptMark{opened: now, at: now, total: l.total}
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

// fullSeconds returns how many whole seconds back acceptedRate measures:
// those the pacer lived through entirely, up to paceWindow-1 (the second it
// started in holds only part of what SLS accepted in a second).
func (p *pacer) fullSeconds(now time.Time) int64 {
	return max(0, min(paceWindow-1, now.Unix()-p.started.Unix()-1))
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
