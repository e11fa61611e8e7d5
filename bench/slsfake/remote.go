package slsfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// Remote is a stand-in reached over its socket only, as one running in
// another process is (the bench's stand-in child, cmd/slsfake): the control
// API (control.go) for outages, counts and drops, and the SDK's PullLogs
// for the logs, as SLS is read. A stand-in in this process is reached the
// same way with NewRemote(s.Addr(), s.Endpoint()). Safe for concurrent use.
type Remote struct {
	addr, endpoint string
	ctl            *http.Client
}

// NewRemote reaches the stand-in listening on addr whose SDK endpoint is
// endpoint (Server.Addr and Server.Endpoint of the stand-in).
func NewRemote(addr, endpoint string) *Remote {
	return &Remote{addr: addr, endpoint: endpoint, ctl: &http.Client{Timeout: 60 * time.Second}}
}

// Addr is the stand-in's listen address; Endpoint the SDK endpoint.
func (r *Remote) Addr() string     { return r.addr }
func (r *Remote) Endpoint() string { return r.endpoint }

// call sends one control request (body as JSON unless nil) and decodes the
// answer into out; a non-200 answer is an error with its message.
func (r *Remote) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("cannot encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+r.addr+path, rd)
	if err != nil {
		return fmt.Errorf("cannot build %s %s: %w", method, path, err)
	}
	resp, err := r.ctl.Do(req)
	if err != nil {
		return fmt.Errorf("stand-in control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("stand-in control %s %s: %d %s", method, path, resp.StatusCode, e.Error)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("cannot read the answer to %s %s: %w", method, path, err)
	}
	return nil
}

func logstoreQuery(project, logstore string) url.Values {
	return url.Values{"project": {project}, "logstore": {logstore}}
}

// Outage starts an outage window (POST /_outage; see Server.Outage).
func (r *Remote) Outage(d time.Duration, mode OutageMode) error {
	return r.call("POST", "/_outage", map[string]any{"duration": d.String(), "mode": mode}, &struct{}{})
}

// Stats are the stand-in's counters (GET /_stats).
func (r *Remote) Stats() (Stats, error) {
	var st Stats
	return st, r.call("GET", "/_stats", nil, &st)
}

// LogCount is the number of stored logs of a logstore (GET /_logstore).
func (r *Remote) LogCount(project, logstore string) (int, error) {
	var v logstoreView
	err := r.call("GET", "/_logstore?"+logstoreQuery(project, logstore).Encode(), nil, &v)
	return v.Logs, err
}

// NewestLogTime is Server.NewestLogTime (GET /_logstore&newest=n).
func (r *Remote) NewestLogTime(project, logstore string, n int) (time.Time, error) {
	q := logstoreQuery(project, logstore)
	q.Set("newest", fmt.Sprint(n))
	var v logstoreView
	err := r.call("GET", "/_logstore?"+q.Encode(), nil, &v)
	return v.NewestLogTime, err
}

// DropNewest deletes the n most recently stored logs (POST /_drop).
func (r *Remote) DropNewest(project, logstore string, n int) (int, error) {
	var v struct{ Dropped int }
	err := r.call("POST", "/_drop", target{Project: project, Logstore: logstore, N: n}, &v)
	return v.Dropped, err
}

// DropMatching deletes every log with a content value holding text
// (POST /_drop with match).
func (r *Remote) DropMatching(project, logstore, text string) (int, error) {
	var v struct{ Dropped int }
	err := r.call("POST", "/_drop", target{Project: project, Logstore: logstore, Match: text}, &v)
	return v.Dropped, err
}

// pullBatch is how many LogGroups one PullLogs asks for: a relay's groups
// may be megabytes each, and the reader holds one answer at a time.
const pullBatch = 32

// ReadLogs reads every stored LogGroup of a logstore through the SDK
// (ListShards, then PullLogs from the oldest stored group of each shard to
// its end), signed with akid/secret, and calls each with the group and
// when it arrived at the stand-in (GET /_received; zero for a group that
// arrived after the shard's arrivals were listed). A group is valid only
// during its call.
func (r *Remote) ReadLogs(project, logstore, akid, secret string, each func(received time.Time, lg *sls.LogGroup)) error {
	c := &sls.Client{Endpoint: r.endpoint, AccessKeyID: akid, AccessKeySecret: secret,
		HTTPClient: NewHTTPClient(r.addr, r.endpoint)}
	shards, err := c.ListShards(project, logstore)
	if err != nil {
		return fmt.Errorf("cannot list the shards of %s/%s: %w", project, logstore, err)
	}
	for _, sh := range shards {
		q := logstoreQuery(project, logstore)
		q.Set("shard", fmt.Sprint(sh.ShardID))
		var arr receivedView
		if err := r.call("GET", "/_received?"+q.Encode(), nil, &arr); err != nil {
			return err
		}
		cur, i := arr.Cursor, 0
		for {
			gl, next, err := c.PullLogs(project, logstore, sh.ShardID, cur, "", pullBatch)
			if err != nil {
				return fmt.Errorf("cannot pull shard %d of %s/%s: %w", sh.ShardID, project, logstore, err)
			}
			for _, lg := range gl.LogGroups {
				var at time.Time
				if i < len(arr.Received) {
					at = time.Unix(0, arr.Received[i])
				}
				i++
				each(at, lg)
			}
			if next == cur { // the shard's end (see servePullLogs)
				break
			}
			cur = next
		}
	}
	return nil
}
