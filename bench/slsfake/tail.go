package slsfake

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// tailedLog is one log as GET /_logs shows it.
type tailedLog struct {
	Shard    int               `json:"shard"`
	Time     string            `json:"time"`
	Source   string            `json:"source,omitempty"`
	Topic    string            `json:"topic,omitempty"`
	Contents map[string]string `json:"contents"`
}

// tailLogs answers GET /_logs: the newest `tail` (default 20, at most
// 1000) logs of a Logstore, across all its shards, oldest first. "Newest"
// is by arrival at the stand-in, not by log time: an operator asks it
// whether delivery is moving, and a shipper replaying old files still
// delivers logs with old times.
func (s *Server) tailLogs(q url.Values) ([]tailedLog, error) {
	project, logstore := q.Get("project"), q.Get("logstore")
	if project == "" || logstore == "" {
		return nil, errors.New("name the project and logstore: /_logs?project=…&logstore=…")
	}
	n := 20
	if t := q.Get("tail"); t != "" {
		v, err := strconv.Atoi(t)
		if err != nil || v < 1 {
			return nil, errors.New("tail must be a positive number")
		}
		n = min(v, 1000)
	}
	var logs []StoredLog
	for _, ref := range s.store.newest(project, logstore, n) {
		group, _, err := decodeGroup(project, logstore, ref)
		if err != nil {
			panic(err) // validated on the way in: a stand-in bug
		}
		logs = append(logs, group...)
	}
	if len(logs) > n {
		logs = logs[len(logs)-n:]
	}
	out := make([]tailedLog, 0, len(logs))
	for _, l := range logs {
		t := tailedLog{Shard: l.ShardID, Source: l.Source, Topic: l.Topic, Contents: map[string]string{}}
		t.Time = time.Unix(int64(l.Time), int64(l.TimeNs)).UTC().Format(time.RFC3339Nano)
		for _, kv := range l.Contents {
			t.Contents[kv.Key] = kv.Value
		}
		out = append(out, t)
	}
	return out, nil
}

// newest copies out the last-arrived groups of one logstore, across its
// shards, until they hold at least n logs (or none are left), in arrival
// order. It walks the store's arrival list from its end: the k-th entry of
// a shard counted from the end stands for that shard's k-th group from the
// end, as both lists are in arrival order. A store shared with busier
// logstores may be walked far back; the store is bounded, so is the walk.
func (st *store) newest(project, logstore string, n int) []groupRef {
	st.mu.Lock()
	defer st.mu.Unlock()
	shardOf := map[*shardLog]int{}
	for k, sl := range st.shards {
		if k.project == project && k.logstore == logstore {
			shardOf[sl] = k.shard
		}
	}
	seen := map[*shardLog]int{} // entries met so far, per shard, from the end
	var out []groupRef
	logs := 0
	for i := len(st.arrival) - 1; i >= st.head && logs < n; i-- {
		sl := st.arrival[i]
		id, ok := shardOf[sl]
		if !ok {
			continue
		}
		k := seen[sl]
		seen[sl] = k + 1
		idx := len(sl.groups) - 1 - k
		g := sl.groups[idx]
		out = append(out, groupRef{shard: id, seq: sl.first + uint64(idx), received: g.received, raw: g.raw})
		logs += g.logs
	}
	slices.Reverse(out)
	return out
}

// NewestLogTime returns the latest log time among the last n logs (at
// least) to arrive in a Logstore, across its shards; zero when it holds
// none. With logs arriving in another order than their times (a backlog
// delivered beside fresh logs), it tells how fresh what SLS receives is,
// without decoding the whole store.
func (s *Server) NewestLogTime(project, logstore string, n int) time.Time {
	var newest time.Time
	for _, ref := range s.store.newest(project, logstore, n) {
		group, _, err := decodeGroup(project, logstore, ref)
		if err != nil {
			panic(err) // validated on the way in: a stand-in bug
		}
		for _, l := range group {
			if t := time.Unix(int64(l.Time), int64(l.TimeNs)); t.After(newest) {
				newest = t
			}
		}
	}
	return newest
}
