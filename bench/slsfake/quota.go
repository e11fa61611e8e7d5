package slsfake

import (
	"fmt"
	"net/http"
	"time"
)

// tokenBucket is a per-second rate limit with one second of burst. It is not
// safe for concurrent use: each lives in a shard, guarded by the logstore's
// mutex.
//
// A request is admitted when the bucket holds its cost. A request costing
// more than one second's quota is admitted when the bucket is full, and its
// whole cost is taken, driving the balance negative: that way a single
// request larger than the quota still passes (as SLS accepts a 10 MB request
// on a 5 MB/s shard) and the debt delays later ones, so the long-run rate
// still holds.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// take reports whether a request costing cost may pass at rate per second,
// and takes the cost if so. rate <= 0 means unlimited.
func (b *tokenBucket) take(now time.Time, rate, cost int64) bool {
	if rate <= 0 {
		return true
	}
	if b.last.IsZero() {
		b.tokens = float64(rate)
	} else if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(float64(rate), b.tokens+dt*float64(rate))
	}
	b.last = now
	if b.tokens < float64(min(cost, rate)) {
		return false
	}
	b.tokens -= float64(cost)
	return true
}

// admit checks both quotas of a shard for one PutLogs of rawBytes; the
// caller holds the logstore's mutex. Neither bucket is charged when either
// refuses, since a rejected request writes nothing.
func (ls *logstore) admit(sh *shard, now time.Time, rawBytes int64, code string) *APIError {
	q := ls.quota
	reqs, bytes := sh.requests, sh.bytes
	if !reqs.take(now, q.RequestsPerSec, 1) || !bytes.take(now, q.BytesPerSec, rawBytes) {
		// Refill both up to now (a zero cost always passes) so the next
		// request's refill counts from here.
		sh.requests.take(now, q.RequestsPerSec, 0)
		sh.bytes.take(now, q.BytesPerSec, 0)
		return &APIError{Status: http.StatusForbidden, Code: code,
			Message: fmt.Sprintf("shard %d write quota exceeded: project %s, logstore %s", sh.ID, ls.project, ls.name)}
	}
	sh.requests, sh.bytes = reqs, bytes
	return nil
}
