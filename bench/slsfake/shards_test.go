package slsfake

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

func TestEvenLayout(t *testing.T) {
	f := func(n int, wantBegins ...string) {
		t.Helper()
		got := evenLayout(n)
		for i, w := range wantBegins {
			if got[i].InclusiveBeginKey != w {
				t.Fatalf("evenLayout(%d)[%d] begins at %s, want %s", n, i, got[i].InclusiveBeginKey, w)
			}
		}
		if got[n-1].ExclusiveEndKey != maxKey {
			t.Fatalf("evenLayout(%d) ends at %s", n, got[n-1].ExclusiveEndKey)
		}
		if _, err := checkLayout(got); err != nil {
			t.Fatal(err)
		}
	}
	f(1, minKey)
	f(2, minKey, "80000000000000000000000000000000")
	f(3, minKey, "55555555555555555555555555555555", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	f(4, minKey, "40000000000000000000000000000000", "80000000000000000000000000000000", "c0000000000000000000000000000000")
}

func TestCheckLayout(t *testing.T) {
	f := func(name string, shards []ShardConfig, wantErr bool) {
		t.Run(name, func(t *testing.T) {
			_, err := checkLayout(shards)
			if (err != nil) != wantErr {
				t.Fatalf("checkLayout = %v, want error %v", err, wantErr)
			}
		})
	}
	f("ok with readonly parent", []ShardConfig{
		{ID: 0, Status: "readonly", InclusiveBeginKey: minKey, ExclusiveEndKey: maxKey},
		{ID: 1, InclusiveBeginKey: minKey, ExclusiveEndKey: "8"},
		{ID: 2, InclusiveBeginKey: "8", ExclusiveEndKey: maxKey},
	}, false)
	f("gap", []ShardConfig{
		{ID: 0, InclusiveBeginKey: minKey, ExclusiveEndKey: "7"},
		{ID: 1, InclusiveBeginKey: "8", ExclusiveEndKey: maxKey},
	}, true)
	f("short", []ShardConfig{{ID: 0, InclusiveBeginKey: minKey, ExclusiveEndKey: "8"}}, true)
	f("duplicate id", []ShardConfig{
		{ID: 0, InclusiveBeginKey: minKey, ExclusiveEndKey: "8"},
		{ID: 0, InclusiveBeginKey: "8", ExclusiveEndKey: maxKey},
	}, true)
	f("bad key", []ShardConfig{{ID: 0, InclusiveBeginKey: "xyz", ExclusiveEndKey: maxKey}}, true)
	f("bad status", []ShardConfig{{ID: 0, Status: "frozen", InclusiveBeginKey: minKey, ExclusiveEndKey: maxKey}}, true)
}

// TestSplitUnderLoad splits a shard while writers are busy: no write fails,
// ListShards shows the parent readonly and two new readwrite children, new
// writes for the parent's range land in a child, and what the parent held
// stays readable.
func TestSplitUnderLoad(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{"10000000000000000000000000000000", "70000000000000000000000000000000", "90000000000000000000000000000000", ""}[w]
			for {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if key == "" {
					err = c.PutLogs(proj, ls1, logGroup("load", 2, uint32(time.Now().Unix())))
				} else {
					err = c.PostLogStoreLogs(proj, ls1, logGroup("load", 2, uint32(time.Now().Unix())), &key)
				}
				if err != nil {
					failed.Add(1)
				}
				sent.Add(2)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	shards, err := s.SplitShard(proj, ls1, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d writes failed during the split", failed.Load())
	}
	if len(shards) != 3 || shards[0].Status != StatusReadOnly || shards[1].ID != 2 || shards[2].ID != 3 ||
		shards[1].ExclusiveEndKey != "40000000000000000000000000000000" || shards[2].InclusiveBeginKey != "40000000000000000000000000000000" {
		t.Fatalf("SplitShard = %+v", shards)
	}

	list, err := c.ListShards(proj, ls1)
	if err != nil {
		t.Fatal(err)
	}
	status := map[int]string{}
	for _, sh := range list {
		status[sh.ShardID] = sh.Status
	}
	want := map[int]string{0: "readonly", 1: "readwrite", 2: "readwrite", 3: "readwrite"}
	for id, st := range want {
		if status[id] != st {
			t.Fatalf("ListShards = %v, want %v", status, want)
		}
	}
	if st, err := c.GetLogStore(proj, ls1); err != nil || st.ShardCount != 3 {
		t.Fatalf("GetLogStore shardCount after split = %v, %v", st, err)
	}

	// A key below the split goes to shard 2, above it to shard 3.
	f := func(key string, wantShard int) {
		t.Helper()
		before := len(pullAll(t, c, proj, ls1, wantShard))
		if err := c.PostLogStoreLogs(proj, ls1, logGroup("after", 1, uint32(time.Now().Unix())), &key); err != nil {
			t.Fatal(err)
		}
		if after := len(pullAll(t, c, proj, ls1, wantShard)); after != before+1 {
			t.Fatalf("key %s: shard %d went from %d to %d groups", key, wantShard, before, after)
		}
	}
	f("10000000000000000000000000000000", 2)
	f("70000000000000000000000000000000", 3)

	// Nothing was lost: every log sent is in some shard, the readonly parent
	// included.
	total := 0
	for id := range 4 {
		for _, g := range pullAll(t, c, proj, ls1, id) {
			if g.GetTopic() == "load" {
				total += len(g.Logs)
			}
		}
	}
	if int64(total) != sent.Load() {
		t.Fatalf("pulled %d load logs, sent %d", total, sent.Load())
	}
}

func TestSplitMergeThroughSDK(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	got, err := c.SplitShard(proj, ls1, 1, "c0000000000000000000000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Status != "readonly" || got[1].ExclusiveBeginKey != "c0000000000000000000000000000000" {
		t.Fatalf("SplitShard = %+v", got)
	}
	got, err = c.MergeShards(proj, ls1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].InclusiveBeginKey != "80000000000000000000000000000000" || got[2].ExclusiveBeginKey != maxKey {
		t.Fatalf("MergeShards = %+v", got)
	}
	// Errors: splitting a readonly shard, a key outside the range, an
	// unknown shard.
	f := func(shard int, key string, wantCode string) {
		t.Helper()
		_, err := s.SplitShard(proj, ls1, shard, key)
		if e, ok := err.(*APIError); !ok || e.Code != wantCode {
			t.Fatalf("SplitShard(%d, %q) = %v, want %s", shard, key, err, wantCode)
		}
	}
	f(1, "", "ParameterInvalid")
	f(0, "90000000000000000000000000000000", "ParameterInvalid")
	f(9, "", "ShardNotExist")
	if _, err := c.GetCursor(proj, ls1, 9, "begin"); err == nil {
		t.Fatal("GetCursor on an unknown shard succeeded")
	}
	var sh []*sls.Shard
	if sh, err = c.ListShards(proj, ls1); err != nil || len(sh) != 5 {
		t.Fatalf("ListShards = %d shards, %v; want 5", len(sh), err)
	}
}
