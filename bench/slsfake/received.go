package slsfake

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// What a reader in another process needs to check delivery (the bench's
// loss check, its per-second delivered count, its freshness after an
// outage), answered by the control API: GET /_logstore and GET /_received.
// The logs themselves are read through PullLogs, as from SLS.

// logstoreView is GET /_logstore's answer.
type logstoreView struct {
	Logs          int       `json:"logs"`
	NewestLogTime time.Time `json:"newestLogTime"`
}

// logstoreState answers GET /_logstore: the stored log count, and with
// newest=N the latest log time among the last N logs to arrive.
func (s *Server) logstoreState(q url.Values) (logstoreView, error) {
	project, logstore := q.Get("project"), q.Get("logstore")
	if project == "" || logstore == "" {
		return logstoreView{}, errors.New("name the project and logstore: /_logstore?project=…&logstore=…")
	}
	if _, aerr := s.logstore(project, logstore); aerr != nil {
		return logstoreView{}, fmt.Errorf("%s/%s: %s", project, logstore, aerr.Message)
	}
	v := logstoreView{Logs: s.LogCount(project, logstore)}
	if n := q.Get("newest"); n != "" {
		k, err := strconv.Atoi(n)
		if err != nil || k < 1 {
			return logstoreView{}, errors.New("newest must be a positive number")
		}
		v.NewestLogTime = s.NewestLogTime(project, logstore, min(k, 10000))
	}
	return v, nil
}

// receivedView is GET /_received's answer: Received[i] (unix ns) is when
// the i-th group from Cursor arrived.
type receivedView struct {
	Cursor   string  `json:"cursor"`
	Received []int64 `json:"received"`
}

// received answers GET /_received for one shard: the cursor of its oldest
// stored group and the arrival time of each stored group from there, in
// the order PullLogs serves them. SLS's GetCursorTime tells a group's
// arrival in whole seconds (the SDK's GetCursorTime returns a unix time);
// a latency check needs finer, and one call per shard rather than one per
// group.
func (s *Server) received(q url.Values) (receivedView, error) {
	project, logstore := q.Get("project"), q.Get("logstore")
	if project == "" || logstore == "" || q.Get("shard") == "" {
		return receivedView{}, errors.New("name the project, logstore and shard: /_received?project=…&logstore=…&shard=0")
	}
	ls, aerr := s.logstore(project, logstore)
	if aerr != nil {
		return receivedView{}, fmt.Errorf("%s/%s: %s", project, logstore, aerr.Message)
	}
	// A shard the logstore lacks is an error, as for PullLogs: answered
	// as empty, a wrong id would read as a shard with nothing stored.
	shard, aerr := shardOf(ls, q.Get("shard"))
	if aerr != nil {
		return receivedView{}, fmt.Errorf("%s/%s: %s", project, logstore, aerr.Message)
	}
	first, times := s.store.arrivals(shardKey{project, logstore, shard})
	v := receivedView{Cursor: encodeCursor(first), Received: make([]int64, len(times))}
	for i, t := range times {
		v.Received[i] = t.UnixNano()
	}
	return v, nil
}

// arrivals returns the sequence number of a shard's oldest stored group
// and when each stored group arrived, oldest first.
func (st *store) arrivals(k shardKey) (first uint64, times []time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	sl := st.shard(k)
	times = make([]time.Time, len(sl.groups))
	for i, g := range sl.groups {
		times[i] = g.received
	}
	return sl.first, times
}
