package slsfake

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// control calls the control API over plain HTTP, as the bench or a shell
// would, and decodes the answer into out.
func control(t *testing.T, s *Server, method, path, body string, wantStatus int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s = %d, want %d", method, path, resp.StatusCode, wantStatus)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

func TestControlAPI(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)

	var added struct{ ID int }
	control(t, s, "POST", "/_fault", `{"ops":["PutLogs"],"status":500,"latency":"10ms"}`, 200, &added)
	e := slsErr(t, put(c, ls1))
	if e.HTTPCode != 500 || e.Code != "InternalServerError" {
		t.Fatalf("got %d %s", e.HTTPCode, e.Code)
	}
	var listed []FaultStatus
	control(t, s, "GET", "/_fault", "", 200, &listed)
	if len(listed) != 1 || listed[0].ID != added.ID || listed[0].Hits != 1 || listed[0].Fault.Latency.String() != "10ms" {
		t.Fatalf("GET /_fault = %+v", listed)
	}
	control(t, s, "DELETE", "/_fault?id="+strconv.Itoa(added.ID), "", 200, nil)
	if err := put(c, ls1); err != nil {
		t.Fatal(err)
	}
	control(t, s, "POST", "/_fault", `{"share":3}`, 400, nil)
	control(t, s, "POST", "/_fault", `{"bogus":1}`, 400, nil)

	var shards []ShardInfo
	control(t, s, "POST", "/_split", `{"project":"test-project-1","logstore":"test-logstore-1","shard":1}`, 200, &shards)
	if len(shards) != 3 || shards[0].Status != StatusReadOnly {
		t.Fatalf("POST /_split = %+v", shards)
	}
	control(t, s, "POST", "/_split", `{"project":"test-project-1","logstore":"nope","shard":1}`, 400, nil)

	control(t, s, "POST", "/_quota", `{"project":"test-project-1","logstore":"test-logstore-1","requestsPerSec":1}`, 200, nil)
	for range 4 { // three readwrite shards, one request each per second: one of these is refused
		put(c, ls1)
	}

	var dropped struct{ Dropped int }
	control(t, s, "POST", "/_drop", `{"project":"test-project-1","logstore":"test-logstore-1","n":1}`, 200, &dropped)
	if dropped.Dropped != 1 {
		t.Fatalf("POST /_drop = %+v", dropped)
	}

	control(t, s, "POST", "/_outage", `{"duration":"200ms","mode":"error"}`, 200, nil)
	if e := slsErr(t, put(c, ls2)); e.HTTPCode != 503 {
		t.Fatalf("during outage: %d %s", e.HTTPCode, e.Code)
	}
	control(t, s, "POST", "/_outage", `{"duration":"1s","mode":"sideways"}`, 400, nil)
	control(t, s, "DELETE", "/_fault", "", 200, nil) // also ends the outage
	if err := put(c, ls2); err != nil {
		t.Fatal(err)
	}

	var st Stats
	control(t, s, "GET", "/_stats", "", 200, &st)
	if st.Requests[OpPutLogs] < 5 || st.FaultHits < 2 || st.QuotaRejections < 1 || st.PutLogs < 2 {
		t.Fatalf("GET /_stats = %+v", st)
	}
	control(t, s, "GET", "/_nothing", "", 404, nil)
}

func TestControlTailLogs(t *testing.T) {
	s := start(t, DefaultConfig())
	c := demoClient(s)
	lg := &sls.LogGroup{Source: strp("host-1"), Logs: []*sls.Log{{
		Time:     u32p(recent),
		Contents: []*sls.LogContent{{Key: strp("content"), Value: strp("hello")}},
	}}}
	if err := c.PutLogs("test-project-1", "test-logstore-1", lg); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/_logs?project=test-project-1&logstore=test-logstore-1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []tailedLog
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Contents["content"] != "hello" || got[0].Source != "host-1" || got[0].Time != time.Unix(int64(recent), 0).UTC().Format(time.RFC3339) {
		t.Fatalf("tail: %+v", got)
	}
	resp2, err := http.Get("http://" + s.Addr() + "/_logs?project=test-project-1")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadRequest {
		t.Fatalf("missing logstore: status %d", resp2.StatusCode)
	}
}
