// Package slsfake is a local stand-in for Alibaba Cloud Log Service (SLS)
// that the unmodified aliyun-log-go-sdk talks to over a real socket.
//
// It serves the parts of the SLS HTTP API the relay, its tests and the bench
// use: PutLogs (POST /logstores/{ls}, /logstores/{ls}/shards/lb and
// /logstores/{ls}/shards/route?key=), ListShards, GetLogStore, GetProject,
// ListProject, ListLogStores, GetCursor, PullLogs and Split/MergeShard. It
// checks requests the way SLS does: the v1 (HMAC-SHA1) and v4 signatures, the
// request time window, Content-MD5, the body size against x-log-bodyrawsize,
// the content rules of PutLogs (keys, values, sizes, UTF-8, log time
// against its own settable clock), RAM policies per action and resource,
// and write quotas. CONTRACT.md lists every rule with the SLS page it
// comes from and the answer given. It
// answers errors as SLS does: a JSON body {"errorCode","errorMessage"}, the
// x-log-requestid header and SLS's HTTP status codes.
//
// What it receives is kept in memory, bounded by Config.MaxStoredBytes (the
// oldest LogGroups are dropped first and counted), and can be read back by
// any SLS client through GetCursor/PullLogs, or in-process through
// Server.Logs. Remote reaches a stand-in in another process the same way a
// shell would: the control API for outages, counts and drops, and PullLogs
// (with each group's arrival from the control API) for the logs. Faults (error shares, latency, outages, connection resets) and
// shard splits can be injected from Go, from the config, or through the small
// JSON control API on the same listener (paths under /_, see control.go).
//
// The SDK always addresses http://<project>.<endpoint>/, so a bare IP
// endpoint cannot work; Server.Endpoint and Server.HTTPClient (or
// NewHTTPClient for a stand-in running in another process) give the SDK a
// host name and an *http.Client whose dialer sends every *.<endpoint host>
// to the stand-in.
//
// Everything exported is safe for concurrent use unless its doc says
// otherwise.
package slsfake
