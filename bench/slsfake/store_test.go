package slsfake

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStoreBound fills a small store: the oldest groups go first and are
// counted, GetCursor(begin) moves past them, and a cursor into dropped data
// is InvalidCursor.
func TestStoreBound(t *testing.T) {
	cfg := testConfig()
	cfg.Projects[0].Logstores[0].ShardCount = 1
	raw, _ := logGroup("b", 10, recent).Marshal()
	cfg.MaxStoredBytes = int64(3 * len(raw)) // room for three groups
	s := start(t, cfg)
	c := demoClient(s)

	first, err := c.GetCursor(proj, ls1, 0, "begin")
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := c.PutLogs(proj, ls1, logGroup("b", 10, recent)); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.DroppedGroups != 2 || st.DroppedLogs != 20 || st.StoredBytes != int64(3*len(raw)) {
		t.Fatalf("stats = %+v, want 2 groups / 20 logs dropped, %d bytes stored", st, 3*len(raw))
	}
	if n := s.LogCount(proj, ls1); n != 30 {
		t.Fatalf("LogCount = %d, want 30", n)
	}
	if _, _, err := c.PullLogs(proj, ls1, 0, first, "", 10); err == nil || !strings.Contains(err.Error(), "InvalidCursor") {
		t.Fatalf("PullLogs from a dropped cursor = %v, want InvalidCursor", err)
	}
	if groups := pullAll(t, c, proj, ls1, 0); len(groups) != 3 {
		t.Fatalf("pulled %d groups, want 3", len(groups))
	}
}

func TestCursorFromTime(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	key := "00"
	if err := c.PostLogStoreLogs(proj, ls1, logGroup("early", 1, recent), &key); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	mid := time.Now().Unix()
	if err := c.PostLogStoreLogs(proj, ls1, logGroup("late", 1, recent), &key); err != nil {
		t.Fatal(err)
	}
	cur, err := c.GetCursor(proj, ls1, 0, strconv.FormatInt(mid, 10))
	if err != nil {
		t.Fatal(err)
	}
	gl, _, err := c.PullLogs(proj, ls1, 0, cur, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(gl.LogGroups) != 1 || gl.LogGroups[0].GetTopic() != "late" {
		t.Fatalf("pulled from %d: %d groups", mid, len(gl.LogGroups))
	}
	at, err := c.GetCursorTime(proj, ls1, 0, cur)
	if err != nil || at.Unix() < mid {
		t.Fatalf("GetCursorTime = %v, %v; want >= %d", at, err, mid)
	}
	// end_cursor bounds a pull.
	begin, _ := c.GetCursor(proj, ls1, 0, "begin")
	gl, next, err := c.PullLogs(proj, ls1, 0, begin, cur, 10)
	if err != nil || len(gl.LogGroups) != 1 || next != cur {
		t.Fatalf("PullLogs(begin, end=%s) = %d groups, next %s, %v", cur, len(gl.LogGroups), next, err)
	}
}

// TestDropHook shows the hook a loss check relies on: a dropped record is
// gone from both the Go accessor and PullLogs.
func TestDropHook(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	for i := range 3 {
		if err := c.PutLogs(proj, ls1, logGroup("d"+strconv.Itoa(i), 4, recent)); err != nil {
			t.Fatal(err)
		}
	}
	n := s.DropLogs(proj, ls1, func(l StoredLog) bool { return l.Topic == "d1" && l.Index == 2 })
	if n != 1 || s.LogCount(proj, ls1) != 11 {
		t.Fatalf("DropLogs = %d, LogCount %d; want 1, 11", n, s.LogCount(proj, ls1))
	}
	for _, l := range s.Logs(proj, ls1) {
		if l.Topic == "d1" && l.Contents[0].Value == "d1 line c" {
			t.Fatal("dropped log still stored")
		}
	}
	if n := s.DropNewest(proj, ls1, 2); n != 2 || s.LogCount(proj, ls1) != 9 {
		t.Fatalf("DropNewest = %d, LogCount %d; want 2, 9", n, s.LogCount(proj, ls1))
	}
	pulled := 0
	for shard := range 2 {
		for _, g := range pullAll(t, c, proj, ls1, shard) {
			pulled += len(g.Logs)
		}
	}
	if pulled != 9 {
		t.Fatalf("pulled %d logs, want 9", pulled)
	}
}

func TestScanLogGroup(t *testing.T) {
	good, _ := logGroup("s", 3, recent).Marshal()
	sum, err := scanLogGroup(good, nil)
	if err != nil || sum.logs != 3 || sum.minTime != recent || sum.maxTime != recent+2 {
		t.Fatalf("scanLogGroup = %+v, %v", sum, err)
	}
	f := func(name string, b []byte) {
		t.Run(name, func(t *testing.T) {
			if _, err := scanLogGroup(b, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	f("truncated", good[:len(good)-3])
	f("log without time", []byte{0x0a, 0x02, 0x12, 0x00})                                   // Logs{Contents{}}: no Time, empty content
	f("content without value", []byte{0x0a, 0x07, 0x08, 0x01, 0x12, 0x03, 0x0a, 0x01, 'k'}) // Contents{Key:"k"}
	f("wrong wire type", []byte{0x08, 0x01})                                                // Logs as varint
	if out := lz4Literals([]byte("x")); len(out) != 2 || out[0] != 0x10 {
		t.Fatalf("lz4Literals = %x", out)
	}
}
