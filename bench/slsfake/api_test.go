package slsfake

import (
	"fmt"
	"strings"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// sameGroup compares a pulled LogGroup with the one sent, field by field.
func sameGroup(t *testing.T, got, want *sls.LogGroup) {
	t.Helper()
	if got.GetTopic() != want.GetTopic() || got.GetSource() != want.GetSource() {
		t.Fatalf("topic/source = %q/%q, want %q/%q", got.GetTopic(), got.GetSource(), want.GetTopic(), want.GetSource())
	}
	if len(got.LogTags) != len(want.LogTags) {
		t.Fatalf("%d tags, want %d", len(got.LogTags), len(want.LogTags))
	}
	for i := range want.LogTags {
		if got.LogTags[i].GetKey() != want.LogTags[i].GetKey() || got.LogTags[i].GetValue() != want.LogTags[i].GetValue() {
			t.Fatalf("tag %d = %v, want %v", i, got.LogTags[i], want.LogTags[i])
		}
	}
	if len(got.Logs) != len(want.Logs) {
		t.Fatalf("%d logs, want %d", len(got.Logs), len(want.Logs))
	}
	for i, w := range want.Logs {
		g := got.Logs[i]
		if g.GetTime() != w.GetTime() || g.GetTimeNs() != w.GetTimeNs() || (g.TimeNs == nil) != (w.TimeNs == nil) {
			t.Fatalf("log %d time = %d.%d, want %d.%d", i, g.GetTime(), g.GetTimeNs(), w.GetTime(), w.GetTimeNs())
		}
		if len(g.Contents) != len(w.Contents) {
			t.Fatalf("log %d has %d contents, want %d", i, len(g.Contents), len(w.Contents))
		}
		for j := range w.Contents {
			if g.Contents[j].GetKey() != w.Contents[j].GetKey() || g.Contents[j].GetValue() != w.Contents[j].GetValue() {
				t.Fatalf("log %d content %d = %v, want %v", i, j, g.Contents[j], w.Contents[j])
			}
		}
	}
}

// TestPutPullRoundTrip writes through every PutLogs path and compression the
// SDK offers, then reads back through GetCursor/PullLogs and Server.Logs.
func TestPutPullRoundTrip(t *testing.T) {
	f := func(name string, compress int, hashKey string, wantShard int, pullCompress int) {
		t.Run(name, func(t *testing.T) {
			s := start(t, testConfig())
			c := demoClient(s)
			sent := logGroup(name, 5, recent)
			var err error
			if hashKey == "" {
				err = c.PutLogsWithCompressType(proj, ls2, sent, compress)
			} else {
				err = c.PostLogStoreLogsV2(proj, ls2, &sls.PostLogStoreLogsRequest{LogGroup: sent, HashKey: &hashKey, CompressType: compress})
			}
			if err != nil {
				t.Fatal(err)
			}

			// Find it through the SDK on whichever shard holds it.
			var found []*sls.LogGroup
			shardOfGroup := -1
			for shard := range 4 {
				cur, err := c.GetCursor(proj, ls2, shard, "begin")
				if err != nil {
					t.Fatal(err)
				}
				gl, meta, err := c.PullLogsWithQuery(&sls.PullLogRequest{Project: proj, Logstore: ls2, ShardID: shard,
					Cursor: cur, LogGroupMaxCount: 10, CompressType: pullCompress})
				if err != nil {
					t.Fatal(err)
				}
				if len(gl.LogGroups) > 0 {
					found, shardOfGroup = gl.LogGroups, shard
					if meta.Count != 1 || meta.NextCursor == cur {
						t.Fatalf("meta = %+v, want count 1 and a new cursor", meta)
					}
					end, err := c.GetCursor(proj, ls2, shard, "end")
					if err != nil {
						t.Fatal(err)
					}
					if end != meta.NextCursor {
						t.Fatalf("next cursor %s, want the end cursor %s", meta.NextCursor, end)
					}
				}
			}
			if len(found) != 1 {
				t.Fatalf("pulled %d groups, want 1", len(found))
			}
			if wantShard >= 0 && shardOfGroup != wantShard {
				t.Fatalf("stored in shard %d, want %d", shardOfGroup, wantShard)
			}
			sameGroup(t, found[0], sent)

			// The same through the Go accessor.
			logs := s.Logs(proj, ls2)
			if len(logs) != 5 {
				t.Fatalf("Logs() = %d logs, want 5", len(logs))
			}
			for i, l := range logs {
				w := sent.Logs[i]
				if l.ShardID != shardOfGroup || l.Topic != name || l.Source != "10.0.0.1" || len(l.Tags) != 2 ||
					l.Tags[0] != (KV{"__tag__:host", "h1"}) || l.Time != w.GetTime() || !l.HasTimeNs || l.TimeNs != w.GetTimeNs() ||
					l.Contents[0] != (KV{"content", w.Contents[0].GetValue()}) || l.Index != i {
					t.Fatalf("log %d = %+v, want %v", i, l, w)
				}
			}
		})
	}
	f("lb-lz4", sls.Compress_LZ4, "", -1, sls.Compress_LZ4)
	f("lb-zstd", sls.Compress_ZSTD, "", -1, sls.Compress_ZSTD)
	f("lb-none", sls.Compress_None, "", -1, sls.Compress_LZ4)
	// test-logstore-2 has 4 even shards: [0,4), [4,8), [8,c), [c,f...].
	f("route-lz4-shard0", sls.Compress_LZ4, "00000000000000000000000000000000", 0, sls.Compress_LZ4)
	f("route-zstd-shard1", sls.Compress_ZSTD, "40000000000000000000000000000000", 1, sls.Compress_LZ4)
	f("route-none-shard2", sls.Compress_None, "bfffffffffffffffffffffffffffffff", 2, sls.Compress_ZSTD)
	f("route-lz4-shard3-top", sls.Compress_LZ4, "ffffffffffffffffffffffffffffffff", 3, sls.Compress_LZ4)
	f("route-short-key", sls.Compress_LZ4, "c", 3, sls.Compress_LZ4)
}

// TestLoadBalance checks that keyless writes spread over readwrite shards
// and that PullLogs pages through many groups in order.
func TestLoadBalance(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	for i := range 8 {
		if err := c.PutLogs(proj, ls2, logGroup(fmt.Sprint("g", i), 1, recent)); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for shard := range 4 {
		groups := pullAll(t, c, proj, ls2, shard)
		if len(groups) != 2 {
			t.Fatalf("shard %d holds %d groups, want 2 (round robin)", shard, len(groups))
		}
		total += len(groups)
	}
	if total != 8 || s.LogCount(proj, ls2) != 8 {
		t.Fatalf("pulled %d, LogCount %d, want 8", total, s.LogCount(proj, ls2))
	}
}

func TestMetadata(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)

	p, err := c.GetProject(proj)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != proj || p.Status != "Normal" || p.Region != "cn-local" {
		t.Fatalf("GetProject = %+v", p)
	}
	exists, err := c.CheckProjectExist("no-such-project")
	if err != nil || exists {
		t.Fatalf("CheckProjectExist(no-such-project) = %v, %v", exists, err)
	}
	names, err := c.ListProject()
	if err != nil || len(names) != 1 || names[0] != proj {
		t.Fatalf("ListProject = %v, %v", names, err)
	}
	stores, err := c.ListLogStore(proj)
	if err != nil || len(stores) != 2 || stores[0] != ls1 || stores[1] != ls2 {
		t.Fatalf("ListLogStore = %v, %v", stores, err)
	}
	st, err := c.GetLogStore(proj, ls2)
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != ls2 || st.ShardCount != 4 || st.TTL != 30 {
		t.Fatalf("GetLogStore = %+v", st)
	}
	shards, err := c.ListShards(proj, ls1)
	if err != nil {
		t.Fatal(err)
	}
	want := []sls.Shard{
		{ShardID: 0, Status: "readwrite", InclusiveBeginKey: "00000000000000000000000000000000", ExclusiveBeginKey: "80000000000000000000000000000000"},
		{ShardID: 1, Status: "readwrite", InclusiveBeginKey: "80000000000000000000000000000000", ExclusiveBeginKey: "ffffffffffffffffffffffffffffffff"},
	}
	if len(shards) != len(want) {
		t.Fatalf("ListShards = %d shards, want %d", len(shards), len(want))
	}
	for i, w := range want {
		g := *shards[i]
		g.CreateTime = 0
		if g != w {
			t.Fatalf("shard %d = %+v, want %+v", i, g, w)
		}
	}
}

// TestErrors checks SLS's answers for bad credentials, missing resources
// and missing permissions, as the SDK reports them.
func TestErrors(t *testing.T) {
	s := start(t, testConfig())
	f := func(name, akid, secret, project, logstore string, write bool, wantStatus int32, wantCode string) {
		t.Run(name, func(t *testing.T) {
			c := client(s, akid, secret)
			var err error
			if write {
				err = c.PutLogs(project, logstore, logGroup("x", 1, recent))
			} else {
				_, err = c.GetLogStore(project, logstore)
			}
			e := slsErr(t, err)
			if e.HTTPCode != wantStatus || e.Code != wantCode || e.RequestID == "" {
				t.Fatalf("got %d %s (request id %q): %s, want %d %s", e.HTTPCode, e.Code, e.RequestID, e.Message, wantStatus, wantCode)
			}
		})
	}
	f("wrong secret put", "demo-akid", "wrong", proj, ls1, true, 401, "SignatureNotMatch")
	f("wrong secret get", "demo-akid", "wrong", proj, ls1, false, 401, "SignatureNotMatch")
	f("unknown key", "nobody", "x", proj, ls1, true, 401, "Unauthorized")
	f("unknown project", "demo-akid", "demo-aksecret", "no-such-project", ls1, true, 404, "ProjectNotExist")
	f("unknown logstore put", "demo-akid", "demo-aksecret", proj, "nope", true, 404, "LogStoreNotExist")
	f("unknown logstore get", "demo-akid", "demo-aksecret", proj, "nope", false, 404, "LogStoreNotExist")
	f("read-only key writes", "reader", "reader-secret", proj, ls1, true, 401, "Unauthorized")
	f("write-only key reads", "writer", "writer-secret", proj, ls1, false, 401, "Unauthorized")

	// And the keys do what they may.
	if err := client(s, "writer", "writer-secret").PutLogs(proj, ls1, logGroup("x", 1, recent)); err != nil {
		t.Fatal(err)
	}
	if _, err := client(s, "reader", "reader-secret").ListShards(proj, ls1); err != nil {
		t.Fatal(err)
	}
}

// TestSignatureV4 checks the SDK's v4 signing, which it uses when told to.
func TestSignatureV4(t *testing.T) {
	s := start(t, testConfig())
	f := func(name, secret, region string, wantCode string) {
		t.Run(name, func(t *testing.T) {
			c := client(s, "demo-akid", secret)
			c.AuthVersion, c.Region = sls.AuthV4, region
			err := c.PostLogStoreLogs(proj, ls1, logGroup("v4", 2, recent), strp("8"))
			if wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.ListShards(proj, ls1); err != nil {
					t.Fatal(err)
				}
				return
			}
			if e := slsErr(t, err); e.Code != wantCode || e.HTTPCode != 401 {
				t.Fatalf("got %d %s, want 401 %s", e.HTTPCode, e.Code, wantCode)
			}
		})
	}
	f("ok", "demo-aksecret", "cn-local", "")
	f("wrong secret", "bad", "cn-local", "SignatureNotMatch")
	f("wrong region", "demo-aksecret", "cn-elsewhere", "Unauthorized")
}

// TestRequireV4: a region that takes only v4 signatures refuses the SDK's
// default v1 and serves v4.
func TestRequireV4(t *testing.T) {
	f := func(name string, requireV4 bool, v4 bool, status int, code string) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.RequireV4 = requireV4
			s := start(t, cfg)
			c := demoClient(s)
			if v4 {
				c.AuthVersion, c.Region = sls.AuthV4, "cn-local"
			}
			wantAnswer(t, c.PutLogs(proj, ls1, groupOf(1, "content", "x")), status, code)
			_, err := c.GetLogStore(proj, ls1)
			wantAnswer(t, err, status, code)
			if status != 0 && !strings.Contains(slsErr(t, err).Message, "requires signature v4") {
				t.Fatalf("message %q", slsErr(t, err).Message)
			}
		})
	}
	f("v1 where v4 is required", true, false, 401, "Unauthorized")
	f("v4 where v4 is required", true, true, 0, "")
	f("v1 by default", false, false, 0, "")
	f("v4 by default", false, true, 0, "")

	cfg := testConfig()
	cfg.RequireV4, cfg.Region = true, ""
	if _, err := New(cfg); err == nil {
		t.Fatal("RequireV4 without a region was accepted")
	}
}
