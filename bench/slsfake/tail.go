package slsfake

import (
	"errors"
	"net/url"
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
// 1000) logs of a Logstore.
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
	logs := s.Logs(project, logstore)
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
