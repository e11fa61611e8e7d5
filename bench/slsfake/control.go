package slsfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The control API shares the SLS listener (SLS paths never start with
// "/_"), takes and answers JSON, needs no signature, and is exempt from
// faults and error/reset outages (a refuse outage resets every connection,
// so it is unreachable until the window ends). Durations are Go strings ("250ms").
//
//	GET    /_stats                      Stats
//	GET    /_logs?project=&logstore=&tail=20
//	                  the newest stored logs, oldest first: a person's way
//	                  to see logs arrive (curl it)
//	GET    /_fault                      active faults with counters
//	POST   /_fault    Fault             add one → {"id": n}
//	DELETE /_fault?id=n                 remove one (without id: remove all)
//	POST   /_outage   {"duration":"5s","mode":"error|reset|refuse"}
//	POST   /_split    {"project","logstore","shard":0,"key":""} → shards
//	POST   /_merge    {"project","logstore","shard":0}          → shards
//	POST   /_quota    {"project","logstore","bytesPerSec":0,"requestsPerSec":0,"soft":false}
//	POST   /_projectquota {"project","writeBytesPerMinute":0,"writeRequestsPerMinute":0}
//	POST   /_keystate     {"id":"akid","state":"enabled|disabled|expired"}
//	POST   /_projectstate {"project":"p","state":"normal|forbidden"}
//	GET    /_clock                      {"now": RFC 3339, "skew": "0s"}
//	POST   /_clock    {"skew":"-10m"} or {"now":"2026-01-02T15:04:05Z"}
//	                  sets the server clock (see SetClockSkew)
//	POST   /_drop     {"project","logstore","n":1} → {"dropped": n}
//	                  deletes the n most recently stored logs (a loss the
//	                  bench's check must notice); with "match":"text"
//	                  instead, every log with a content value holding text
//	GET    /_logstore?project=&logstore=&newest=1000
//	                  {"logs": n, "newestLogTime": RFC 3339}: how many logs
//	                  are stored (cheap to poll), and with newest=N the
//	                  latest log time among the last N to arrive
//	GET    /_received?project=&logstore=&shard=
//	                  {"cursor": "...", "received": [unix ns, ...]}: when each
//	                  stored LogGroup of the shard arrived, from the cursor
//	                  of the oldest on, in the order PullLogs serves them
//	                  (SLS's GetCursorTime answers whole seconds only)
//
// Errors are {"error": "..."} with status 400 (404 for an unknown path).

// faultWire is Fault's JSON form: durations as strings.
type faultWire struct {
	plainFault
	Latency string `json:"latency,omitempty"`
	For     string `json:"for,omitempty"`
}

type plainFault Fault

// MarshalJSON writes durations as Go duration strings.
func (f Fault) MarshalJSON() ([]byte, error) {
	w := faultWire{plainFault: plainFault(f)}
	if f.Latency != 0 {
		w.Latency = f.Latency.String()
	}
	if f.For != 0 {
		w.For = f.For.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads durations as Go duration strings.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var w faultWire
	// Strict, as the YAML config is: a misspelt field must not silently
	// turn into a fault that hits everything.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*f = Fault(w.plainFault)
	var err error
	if w.Latency != "" {
		if f.Latency, err = time.ParseDuration(w.Latency); err != nil {
			return fmt.Errorf("cannot read latency: %w", err)
		}
	}
	if w.For != "" {
		if f.For, err = time.ParseDuration(w.For); err != nil {
			return fmt.Errorf("cannot read for: %w", err)
		}
	}
	return nil
}

type target struct {
	Project        string `json:"project"`
	Logstore       string `json:"logstore"`
	Shard          int    `json:"shard"`
	Key            string `json:"key"`
	N              int    `json:"n"`
	Match          string `json:"match"`
	BytesPerSec    int64  `json:"bytesPerSec"`
	RequestsPerSec int64  `json:"requestsPerSec"`
	Soft           bool   `json:"soft"`
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	reply := func(v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			v = map[string]string{"error": err.Error()}
		}
		json.NewEncoder(w).Encode(v)
	}
	decode := func(v any) bool {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			reply(nil, fmt.Errorf("cannot read the request: %w", err))
			return false
		}
		return true
	}
	var t target
	switch r.Method + " " + r.URL.Path {
	case "GET /_stats":
		reply(s.Stats(), nil)
	case "GET /_logs":
		reply(s.tailLogs(r.URL.Query()))
	case "GET /_fault":
		reply(s.Faults(), nil)
	case "POST /_fault":
		var f Fault
		if decode(&f) {
			id, err := s.AddFault(f)
			reply(map[string]int{"id": id}, err)
		}
	case "DELETE /_fault":
		if idStr := r.URL.Query().Get("id"); idStr != "" {
			id, err := strconv.Atoi(idStr)
			if err == nil && !s.RemoveFault(id) {
				err = fmt.Errorf("no active fault %d", id)
			}
			reply(map[string]int{"removed": id}, err)
			return
		}
		s.ClearFaults()
		reply(map[string]string{}, nil)
	case "POST /_outage":
		var o struct {
			Duration string     `json:"duration"`
			Mode     OutageMode `json:"mode"`
		}
		if decode(&o) {
			d, err := time.ParseDuration(o.Duration)
			if err == nil {
				err = s.Outage(d, o.Mode)
			}
			reply(map[string]string{}, err)
		}
	case "POST /_split":
		if decode(&t) {
			reply(s.SplitShard(t.Project, t.Logstore, t.Shard, t.Key))
		}
	case "POST /_merge":
		if decode(&t) {
			reply(s.MergeShards(t.Project, t.Logstore, t.Shard))
		}
	case "POST /_quota":
		if decode(&t) {
			reply(map[string]string{}, s.SetQuota(t.Project, t.Logstore, Quota{BytesPerSec: t.BytesPerSec, RequestsPerSec: t.RequestsPerSec, Soft: t.Soft}))
		}
	case "POST /_projectquota":
		var q struct {
			Project string `json:"project"`
			ProjectQuota
		}
		if decode(&q) {
			reply(map[string]string{}, s.SetProjectQuota(q.Project, q.ProjectQuota))
		}
	case "POST /_keystate":
		var k struct {
			ID    string   `json:"id"`
			State KeyState `json:"state"`
		}
		if decode(&k) {
			reply(map[string]string{}, s.SetKeyState(k.ID, k.State))
		}
	case "POST /_projectstate":
		var p struct {
			Project string       `json:"project"`
			State   ProjectState `json:"state"`
		}
		if decode(&p) {
			reply(map[string]string{}, s.SetProjectState(p.Project, p.State))
		}
	case "GET /_clock":
		reply(s.clockState(), nil)
	case "POST /_clock":
		var c struct {
			Skew string    `json:"skew"`
			Now  time.Time `json:"now"`
		}
		if decode(&c) {
			err := s.setClock(c.Skew, c.Now)
			reply(s.clockState(), err)
		}
	case "POST /_drop":
		if decode(&t) {
			if t.Match != "" {
				reply(map[string]int{"dropped": s.dropMatching(t.Project, t.Logstore, t.Match)}, nil)
				return
			}
			reply(map[string]int{"dropped": s.DropNewest(t.Project, t.Logstore, max(t.N, 1))}, nil)
		}
	case "GET /_logstore":
		reply(s.logstoreState(r.URL.Query()))
	case "GET /_received":
		reply(s.received(r.URL.Query()))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"error": "no control endpoint " + r.Method + " " + r.URL.Path})
	}
}

// dropMatching deletes every stored log of a logstore with a content value
// holding text (see DropLogs) and returns how many it deleted.
func (s *Server) dropMatching(project, logstore, text string) int {
	return s.DropLogs(project, logstore, func(l StoredLog) bool {
		return slices.ContainsFunc(l.Contents, func(kv KV) bool { return strings.Contains(kv.Value, text) })
	})
}

// DropNewest deletes the n most recently stored logs of a logstore (see
// DropLogs) and returns how many it deleted.
func (s *Server) DropNewest(project, logstore string, n int) int {
	type id struct {
		shard  int
		cursor string
		index  int
	}
	logs := s.Logs(project, logstore)
	slices.SortStableFunc(logs, func(a, b StoredLog) int { return b.Received.Compare(a.Received) })
	victims := make(map[id]bool)
	for _, l := range logs[:min(n, len(logs))] {
		victims[id{l.ShardID, l.Cursor, l.Index}] = true
	}
	return s.DropLogs(project, logstore, func(l StoredLog) bool { return victims[id{l.ShardID, l.Cursor, l.Index}] })
}
