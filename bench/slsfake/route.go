package slsfake

import (
	"net"
	"net/http"
	"strings"
)

// route is what the URL and Host say a request is about.
type route struct {
	op       string
	project  string
	logstore string
	shard    string // shard id from the path, if any
	hashKey  string // for PutLogs by route
	byKey    bool   // PutLogs through /shards/route
}

// parseRoute maps SLS's URL space onto operations. The project is the first
// label of the Host header (SLS project names never contain a dot), unless
// the host is the bare endpoint or an IP address.
func parseRoute(r *http.Request, endpointHost string) route {
	var rt route
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if net.ParseIP(host) == nil && host != endpointHost {
		if i := strings.IndexByte(host, '.'); i > 0 {
			rt.project = host[:i]
		}
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 1 && parts[0] == "" {
		parts = nil
	}
	q := r.URL.Query()
	get, post := r.Method == http.MethodGet, r.Method == http.MethodPost
	switch {
	case len(parts) == 0 && get && rt.project != "":
		rt.op = OpGetProject
	case len(parts) == 0 && get:
		rt.op = OpListProject
	case len(parts) == 0 || parts[0] != "logstores":
		// Not an SLS path the stand-in serves: rt.op stays empty.
	case len(parts) == 1 && get:
		rt.op = OpListLogStores
	case len(parts) == 2:
		rt.logstore = parts[1]
		if get {
			rt.op = OpGetLogStore
		} else if post {
			rt.op = OpPutLogs
		}
	case len(parts) >= 3 && parts[2] == "shards":
		rt.logstore = parts[1]
		switch {
		case len(parts) == 3 && get:
			rt.op = OpListShards
		case len(parts) == 4 && post && parts[3] == "lb":
			rt.op = OpPutLogs
		case len(parts) == 4 && post && parts[3] == "route":
			rt.op, rt.hashKey, rt.byKey = OpPutLogs, q.Get("key"), true
		case len(parts) == 4 && get && q.Get("type") == "cursor":
			rt.op, rt.shard = OpGetCursor, parts[3]
		case len(parts) == 4 && get && q.Get("type") == "cursor_time":
			rt.op, rt.shard = OpGetCursorTime, parts[3]
		case len(parts) == 4 && get && q.Get("type") == "logs":
			rt.op, rt.shard = OpPullLogs, parts[3]
		case len(parts) == 4 && post && q.Get("action") == "split":
			rt.op, rt.shard = OpSplitShard, parts[3]
		case len(parts) == 4 && post && q.Get("action") == "merge":
			rt.op, rt.shard = OpMergeShards, parts[3]
		}
	}
	return rt
}
