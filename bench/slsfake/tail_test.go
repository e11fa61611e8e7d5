package slsfake

import (
	"fmt"
	"net/http"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// TestTailNewestByArrival writes a long run to one shard and then a few
// logs to the other shard and to another logstore: /_logs?tail=N must show
// the last N to arrive, whichever shard holds them. Ordered by shard, the
// tail would show the long run's end and delivery would look stalled.
func TestTailNewestByArrival(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	put := func(logstore, hashKey, topic string, n int) {
		t.Helper()
		if err := c.PostLogStoreLogs(proj, logstore, logGroup(topic, n, recent), &hashKey); err != nil {
			t.Fatal(err)
		}
	}
	const shard0, shard1 = "00000000000000000000000000000000", "ffffffffffffffffffffffffffffffff"
	put(ls1, shard0, "early", 3)
	put(ls1, shard1, "middle", 10)
	put(ls1, shard0, "late", 2)
	put(ls2, shard0, "other-logstore", 4) // newer, but not asked for
	put(ls1, shard1, "last", 1)

	tail := func(n int) []tailedLog {
		t.Helper()
		var got []tailedLog
		control(t, s, "GET", fmt.Sprintf("/_logs?project=%s&logstore=%s&tail=%d", proj, ls1, n), "", http.StatusOK, &got)
		return got
	}
	f := func(n int, want []string) {
		t.Helper()
		got := tail(n)
		var topics []string
		for _, l := range got {
			topics = append(topics, fmt.Sprintf("%s/%d", l.Topic, l.Shard))
		}
		if fmt.Sprint(topics) != fmt.Sprint(want) {
			t.Fatalf("tail=%d = %v, want %v", n, topics, want)
		}
	}
	f(1, []string{"last/1"})
	f(3, []string{"late/0", "late/0", "last/1"})
	// Part of a group: its newest logs, in the order they were sent.
	f(4, []string{"middle/1", "late/0", "late/0", "last/1"})
	if got := tail(4); got[0].Contents["content"] != "middle line j" {
		t.Fatalf("tail=4 starts with %q, want the middle group's last log", got[0].Contents["content"])
	}
	all := []string{"early/0", "early/0", "early/0"}
	for range 10 {
		all = append(all, "middle/1")
	}
	all = append(all, "late/0", "late/0", "last/1")
	f(100, all)
}

// TestTailAfterDrop: groups the memory bound dropped are not shown, and the
// walk stops at the oldest group still stored.
func TestTailAfterDrop(t *testing.T) {
	cfg := testConfig()
	raw, _ := logGroup("g0", 2, recent).Marshal()
	cfg.MaxStoredBytes = int64(2 * len(raw)) // room for two groups
	s := start(t, cfg)
	c := demoClient(s)
	for i := range 4 {
		if err := c.PutLogs(proj, ls1, logGroup(fmt.Sprintf("g%d", i), 2, recent)); err != nil {
			t.Fatal(err)
		}
	}
	refs := s.store.newest(proj, ls1, 100)
	var topics []string
	for _, ref := range refs {
		_, lg, err := decodeGroup(proj, ls1, ref)
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, lg.GetTopic())
	}
	if fmt.Sprint(topics) != "[g2 g3]" {
		t.Fatalf("newest groups after the bound dropped two = %v, want [g2 g3]", topics)
	}
}

// NewestLogTime is the latest log time among the last logs to arrive,
// whatever order their times are in: fresh logs, then a backlog's older
// ones, still read as fresh; asked for fewer logs than the backlog's, it
// sees only those.
func TestNewestLogTime(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	hashKey := "00000000000000000000000000000000"
	if got := s.NewestLogTime(proj, ls1, 10); !got.IsZero() {
		t.Fatalf("empty logstore: %v, want zero", got)
	}
	fresh, old := recent, recent-3600
	for _, g := range []*sls.LogGroup{logGroup("fresh", 2, fresh), logGroup("backlog", 5, old)} {
		if err := c.PostLogStoreLogs(proj, ls1, g, &hashKey); err != nil {
			t.Fatal(err)
		}
	}
	f := func(n int, wantSec uint32) {
		t.Helper()
		if got := s.NewestLogTime(proj, ls1, n); got.Unix() != int64(wantSec) {
			t.Errorf("NewestLogTime(%d) = %d, want %d", n, got.Unix(), wantSec)
		}
	}
	f(7, fresh+1)
	f(5, old+4)
}
