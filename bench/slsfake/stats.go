package slsfake

import "sync/atomic"

// Stats are the stand-in's counters since New.
type Stats struct {
	Requests        map[string]int64 `json:"requests"` // by operation ("" for unknown paths)
	Errors          int64            `json:"errors"`   // error answers, faults included
	FaultHits       int64            `json:"faultHits"`
	QuotaRejections int64            `json:"quotaRejections"` // per-shard hard quota
	// ProjectQuotaRejections counts 403 WriteQuotaExceed of the project
	// quota.
	ProjectQuotaRejections int64 `json:"projectQuotaRejections"`
	// ShardQuotaOverruns counts PutLogs admitted past a soft per-shard
	// quota (SLS's best effort).
	ShardQuotaOverruns int64 `json:"shardQuotaOverruns"`

	PutLogGroups int64 `json:"putLogGroups"` // accepted PutLogs
	PutLogs      int64 `json:"putLogs"`      // logs in them
	PutRawBytes  int64 `json:"putRawBytes"`  // uncompressed
	PutWireBytes int64 `json:"putWireBytes"` // as received
	// OutOfRangeGroups counts accepted PutLogs holding a log whose time SLS
	// would not accept (older than 7 days or over 15 minutes ahead).
	OutOfRangeGroups int64 `json:"outOfRangeGroups"`

	PulledGroups   int64 `json:"pulledGroups"`
	PulledRawBytes int64 `json:"pulledRawBytes"`

	StoredBytes   int64 `json:"storedBytes"`
	DroppedGroups int64 `json:"droppedGroups"` // dropped by the MaxStoredBytes bound
	DroppedLogs   int64 `json:"droppedLogs"`
	DroppedBytes  int64 `json:"droppedBytes"`
}

// counters are updated on the request path without a lock: requests is
// built once for every operation and only its values change.
type counters struct {
	requests map[string]*atomic.Int64

	errors, faultHits, quotaRejections       atomic.Int64
	projectQuotaRejections, shardOverruns    atomic.Int64
	putGroups, putLogs, putRaw, putWire      atomic.Int64
	outOfRange, pulledGroups, pulledRawBytes atomic.Int64
}

func (c *counters) init() {
	c.requests = make(map[string]*atomic.Int64)
	for _, op := range append([]string{""}, allOps...) {
		c.requests[op] = new(atomic.Int64)
	}
}

func (c *counters) request(op string) { c.requests[op].Add(1) }

func (c *counters) addPut(logs, raw, wire int) {
	c.putGroups.Add(1)
	c.putLogs.Add(int64(logs))
	c.putRaw.Add(int64(raw))
	c.putWire.Add(int64(wire))
}

func (c *counters) pulled(groups, raw int) {
	c.pulledGroups.Add(int64(groups))
	c.pulledRawBytes.Add(int64(raw))
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	out := Stats{
		Requests:               make(map[string]int64),
		Errors:                 c.errors.Load(),
		FaultHits:              c.faultHits.Load(),
		QuotaRejections:        c.quotaRejections.Load(),
		ProjectQuotaRejections: c.projectQuotaRejections.Load(),
		ShardQuotaOverruns:     c.shardOverruns.Load(),
		PutLogGroups:           c.putGroups.Load(),
		PutLogs:                c.putLogs.Load(),
		PutRawBytes:            c.putRaw.Load(),
		PutWireBytes:           c.putWire.Load(),
		OutOfRangeGroups:       c.outOfRange.Load(),
		PulledGroups:           c.pulledGroups.Load(),
		PulledRawBytes:         c.pulledRawBytes.Load(),
	}
	for k, v := range c.requests {
		if n := v.Load(); n > 0 {
			out.Requests[k] = n
		}
	}
	st := s.store
	st.mu.Lock()
	out.StoredBytes = st.size
	out.DroppedGroups, out.DroppedLogs, out.DroppedBytes = st.droppedGroups, st.droppedLogs, st.droppedBytes
	st.mu.Unlock()
	return out
}
