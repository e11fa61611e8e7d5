package slsfake

import (
	"fmt"
	"net/http"
	"time"
)

// Write quotas, as SLS documents them ("Basic resource limits",
// https://www.alibabacloud.com/help/en/sls/basic-resources): "Hard limits
// apply at the project level. If exceeded, the system returns an HTTP 403
// status code"; "Soft limits apply at the shard level. If exceeded, the
// service continues on a best-effort basis. Throughput and latency are not
// guaranteed." Project: write traffic 100 GB/min, write requests
// 600,000/min. Shard: 5 MB/s (10 MB/s without an index) and 500 writes/s.
//
// The answers are those of the throttling page ("Handle resource
// throttling errors",
// https://www.alibabacloud.com/help/en/sls/user-guide/expansion-of-resources;
// Chinese edition https://help.aliyun.com/zh/sls/expansion-of-resources,
// which gives the messages): "WriteQuotaExceed (project-level resource
// quota exceeded)" with "Project write quota exceed: inflow: xxx" (write
// traffic) or "Project write quota exceed: qps: xxx" (writes), and
// "ShardWriteQuotaExceed (shard-level resource quota exceeded)" with
// "shard write quota exceed, shard: xxx" (the remedy: split the shard).
// The limits page ("Data read and write",
// https://www.alibabacloud.com/help/doc-detail/92571.htm) has the older
// texts "Inflow Quota Exceed" and "Write QPS Exceed". What xxx stands for
// is not documented (SLS's own error-log example reads "qps: 474"); the
// stand-in puts the quota, per second.
//
// SLS gives the project quotas per minute without saying how the minute
// is counted; the stand-in meters them with a bucket a minute deep
// (tokenBucket), the reading under which a steady rate at the quota always
// passes.
const (
	// DefaultProjectWriteBytesPerMinute is SLS's default project write
	// traffic quota (raw bytes).
	DefaultProjectWriteBytesPerMinute = 100 << 30
	// DefaultProjectWriteRequestsPerMinute is SLS's default project write
	// request quota.
	DefaultProjectWriteRequestsPerMinute = 600_000
)

// tokenBucket is a rate limit of rate per window with one window of burst.
// It is not safe for concurrent use: each lives in a shard or a project,
// guarded by that one's mutex.
//
// A request is admitted when the bucket holds its cost. A request costing
// more than one window's quota is admitted when the bucket is full, and its
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
	return b.takeWindow(now, rate, time.Second, cost)
}

// takeWindow is take for a rate per window.
func (b *tokenBucket) takeWindow(now time.Time, rate int64, window time.Duration, cost int64) bool {
	if rate <= 0 {
		return true
	}
	if b.last.IsZero() {
		b.tokens = float64(rate)
	} else if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(float64(rate), b.tokens+dt.Seconds()/window.Seconds()*float64(rate))
	}
	b.last = now
	if b.tokens < float64(min(cost, rate)) {
		return false
	}
	b.tokens -= float64(cost)
	return true
}

// admit checks a shard's quota for one PutLogs of rawBytes; the caller
// holds the logstore's mutex. Neither bucket is charged when either
// refuses, since a rejected request writes nothing. A soft quota (SLS's
// own per-shard limits) admits the request anyway and reports the overrun.
func (ls *logstore) admit(sh *shard, now time.Time, rawBytes int64, code string) (overrun bool, aerr *APIError) {
	q := ls.quota
	reqs, bytes := sh.requests, sh.bytes
	if !reqs.take(now, q.RequestsPerSec, 1) || !bytes.take(now, q.BytesPerSec, rawBytes) {
		if q.Soft {
			// Best effort: it passes, and the buckets start over from
			// here so one burst is one overrun, not a lasting debt.
			sh.requests, sh.bytes = tokenBucket{}, tokenBucket{}
			return true, nil
		}
		// Refill both up to now (a zero cost always passes) so the next
		// request's refill counts from here.
		sh.requests.take(now, q.RequestsPerSec, 0)
		sh.bytes.take(now, q.BytesPerSec, 0)
		return false, &APIError{Status: http.StatusForbidden, Code: code,
			Message: fmt.Sprintf("shard write quota exceed, shard: %d", sh.ID)}
	}
	sh.requests, sh.bytes = reqs, bytes
	return false, nil
}

// admitLB admits a load-balanced write (no hash key) of rawBytes on the
// first read-write shard, from first on, that has room: SLS's load
// balancing writes "to multiple shards based on automatic balancing"
// (https://www.alibabacloud.com/help/en/log-service/latest/shards). When
// none has, the answer is ShardWriteQuotaExceed "shard write quota exceed,
// please split shard", the throttling page's message for every available
// shard over its limit. It returns the shard written to; the caller holds
// the logstore's mutex.
func (ls *logstore) admitLB(first *shard, now time.Time, rawBytes int64, code string) (*shard, bool, *APIError) {
	overrun, aerr := ls.admit(first, now, rawBytes, code)
	if aerr == nil {
		return first, overrun, nil
	}
	for _, sh := range ls.shards {
		if sh == first || sh.Status != StatusReadWrite {
			continue
		}
		if overrun, err := ls.admit(sh, now, rawBytes, code); err == nil {
			return sh, overrun, nil
		}
	}
	aerr.Message = "shard write quota exceed, please split shard"
	return first, false, aerr
}

// ProjectQuota is a project's hard write quota; a zero field turns that
// limit off.
type ProjectQuota struct {
	WriteBytesPerMinute    int64 `yaml:"writeBytesPerMinute" json:"writeBytesPerMinute"` // raw bytes
	WriteRequestsPerMinute int64 `yaml:"writeRequestsPerMinute" json:"writeRequestsPerMinute"`
}

// admitProject checks the project's quota for one PutLogs of rawBytes and
// charges it. A request the shard then refuses stays charged, as SLS
// counts a request against the project when it arrives.
func (p *project) admitProject(now time.Time, rawBytes int64) *APIError {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.quota
	reqs, bytes := p.requests, p.bytes
	if !reqs.takeWindow(now, q.WriteRequestsPerMinute, time.Minute, 1) {
		p.requests.takeWindow(now, q.WriteRequestsPerMinute, time.Minute, 0)
		return &APIError{Status: http.StatusForbidden, Code: "WriteQuotaExceed",
			Message: fmt.Sprintf("Project write quota exceed: qps: %d", q.WriteRequestsPerMinute/60)}
	}
	if !bytes.takeWindow(now, q.WriteBytesPerMinute, time.Minute, rawBytes) {
		p.bytes.takeWindow(now, q.WriteBytesPerMinute, time.Minute, 0)
		return &APIError{Status: http.StatusForbidden, Code: "WriteQuotaExceed",
			Message: fmt.Sprintf("Project write quota exceed: inflow: %d", q.WriteBytesPerMinute/60)}
	}
	p.requests, p.bytes = reqs, bytes
	return nil
}

// SetProjectQuota changes a project's hard write quota (zero fields turn
// limits off) and starts its buckets afresh.
func (s *Server) SetProjectQuota(project string, q ProjectQuota) error {
	p, ok := s.projects[project]
	if !ok {
		return fmt.Errorf("cannot set the quota of project %s: no such project", project)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.quota, p.requests, p.bytes = q, tokenBucket{}, tokenBucket{}
	return nil
}
