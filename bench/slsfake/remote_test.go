package slsfake

import (
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// Remote reads back, over the socket only, exactly what the stand-in
// stored, with each group's arrival time, and its drops, counts and
// outages act on the stand-in as the Go methods do.
func TestRemote(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	base := uint32(time.Now().Add(-time.Minute).Unix())
	// 40 groups across both shards of ls1: more than one PullLogs batch
	// on each.
	for i := range 40 {
		if err := c.PutLogs(proj, ls1, logGroup("r", 3, base+uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	r := NewRemote(s.Addr(), s.Endpoint())
	read := func() (logs int, values map[string]int) {
		t.Helper()
		values = map[string]int{}
		err := r.ReadLogs(proj, ls1, "demo-akid", "demo-aksecret", func(at time.Time, lg *sls.LogGroup) {
			if at.IsZero() || time.Since(at) > time.Minute {
				t.Errorf("group arrival %v", at)
			}
			for _, l := range lg.Logs {
				logs++
				values[l.Contents[0].GetValue()]++
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return logs, values
	}
	n, values := read()
	if want := len(s.Logs(proj, ls1)); n != want || n != 120 {
		t.Fatalf("read %d logs through the SDK, the stand-in holds %d", n, want)
	}
	// Arrival times are the stored ones, in PullLogs' order.
	stored := s.Logs(proj, ls1)
	var got []time.Time
	r.ReadLogs(proj, ls1, "demo-akid", "demo-aksecret", func(at time.Time, lg *sls.LogGroup) {
		for range lg.Logs {
			got = append(got, at)
		}
	})
	for i := range stored {
		if !got[i].Equal(stored[i].Received) {
			t.Fatalf("log %d arrived %v, the stand-in says %v", i, got[i], stored[i].Received)
		}
	}
	if cnt, err := r.LogCount(proj, ls1); err != nil || cnt != 120 {
		t.Fatalf("LogCount = %d, %v", cnt, err)
	}
	newest, err := r.NewestLogTime(proj, ls1, 1000)
	if want := s.NewestLogTime(proj, ls1, 1000); err != nil || !newest.Equal(want) {
		t.Fatalf("NewestLogTime = %v, %v; want %v", newest, err, want)
	}
	if d, err := r.DropMatching(proj, ls1, "r line b"); err != nil || d != values["r line b"] || d == 0 {
		t.Fatalf("DropMatching dropped %d (%v), want %d", d, err, values["r line b"])
	}
	if d, err := r.DropNewest(proj, ls1, 2); err != nil || d != 2 {
		t.Fatalf("DropNewest dropped %d (%v)", d, err)
	}
	if n, after := read(); n != 120-values["r line b"]-2 || after["r line b"] != 0 {
		t.Fatalf("after the drops: %d logs, %d matching", n, after["r line b"])
	}
	if err := r.Outage(300*time.Millisecond, OutageError); err != nil {
		t.Fatal(err)
	}
	if e := slsErr(t, put(c, ls1)); e.HTTPCode != 503 {
		t.Fatalf("during the outage: %d %s", e.HTTPCode, e.Code)
	}
	if _, err := r.LogCount("nope", ls1); err == nil {
		t.Fatal("an unknown project's count: no error")
	}
}

// GET /_received names a shard: one the logstore does not have is an
// error, as PullLogs answers ShardNotExist, not "nothing stored" (a reader
// checking delivery would take a wrong shard id for an empty shard), and
// asking adds no shard to the store.
func TestReceivedUnknownShard(t *testing.T) {
	s := start(t, testConfig())
	stored := func() int {
		s.store.mu.Lock()
		defer s.store.mu.Unlock()
		return len(s.store.shards)
	}
	before := stored()
	var e struct{ Error string }
	control(t, s, "GET", "/_received?project="+proj+"&logstore="+ls1+"&shard=99", "", 400, &e)
	if !strings.Contains(e.Error, "99") {
		t.Fatalf("error %q does not name the shard", e.Error)
	}
	if after := stored(); after != before {
		t.Fatalf("the store holds %d shards before, %d after", before, after)
	}
	control(t, s, "GET", "/_received?project="+proj+"&logstore="+ls1+"&shard=0", "", 200, nil)
}
