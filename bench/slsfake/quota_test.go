package slsfake

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestProjectQuota checks the project's hard quotas through the SDK: 403
// WriteQuotaExceed with SLS's messages, set in the config, from Go and
// from the control API, across the project's logstores.
func TestProjectQuota(t *testing.T) {
	f := func(name string, set func(s *Server), puts, wantOK int, wantMsg string) {
		t.Run(name, func(t *testing.T) {
			frozen := time.Now()
			s := startWith(t, testConfig(), func(s *Server) { s.clock = func() time.Time { return frozen } })
			set(s)
			c := demoClient(s)
			ok := 0
			for i := range puts {
				// Alternate logstores: the quota is the project's.
				err := c.PutLogs(proj, []string{ls1, ls2}[i%2], groupOf(1, "content", "0123456789"))
				if err == nil {
					ok++
					continue
				}
				wantAnswer(t, err, 403, "WriteQuotaExceed")
				if msg := slsErr(t, err).Message; !strings.HasPrefix(msg, wantMsg) {
					t.Fatalf("message %q, want %q", msg, wantMsg)
				}
			}
			if ok != wantOK {
				t.Fatalf("%d of %d puts passed, want %d", ok, puts, wantOK)
			}
			if st := s.Stats(); st.ProjectQuotaRejections != int64(puts-ok) || st.QuotaRejections != 0 {
				t.Fatalf("stats %+v, want %d project rejections", st, puts-ok)
			}
		})
	}
	size := func() int64 {
		raw, _ := groupOf(1, "content", "0123456789").Marshal()
		return int64(len(raw))
	}()
	goQuota := func(q ProjectQuota) func(*Server) {
		return func(s *Server) {
			if err := s.SetProjectQuota(proj, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	f("requests from Go", goQuota(ProjectQuota{WriteRequestsPerMinute: 5}), 8, 5, "Project write quota exceed: qps: ")
	f("bytes from Go", goQuota(ProjectQuota{WriteBytesPerMinute: 3 * size}), 6, 3, "Project write quota exceed: inflow: ")
	f("requests from control", func(s *Server) {
		if code := postControl(t, s, "/_projectquota", fmt.Sprintf(`{"project":%q,"writeRequestsPerMinute":4}`, proj)); code != 200 {
			t.Fatalf("POST /_projectquota: %d", code)
		}
	}, 6, 4, "Project write quota exceed: qps: ")
	f("off", goQuota(ProjectQuota{}), 20, 20, "")
	f("SLS's default", func(*Server) {}, 20, 20, "")

	t.Run("from config, per project", func(t *testing.T) {
		cfg := testConfig()
		cfg.ProjectQuota = &ProjectQuota{WriteRequestsPerMinute: 1}
		cfg.Projects = append(cfg.Projects, ProjectConfig{Name: otherProj, Quota: &ProjectQuota{WriteRequestsPerMinute: 2},
			Logstores: []LogstoreConfig{{Name: ls1}}})
		s := start(t, cfg)
		c := demoClient(s)
		for _, want := range []int{0, 403} {
			wantAnswer(t, c.PutLogs(proj, ls1, groupOf(1, "content", "x")), want, "WriteQuotaExceed")
		}
		for _, want := range []int{0, 0, 403} {
			wantAnswer(t, c.PutLogs(otherProj, ls1, groupOf(1, "content", "x")), want, "WriteQuotaExceed")
		}
	})
	if code := postControl(t, start(t, testConfig()), "/_projectquota", `{"project":"nope"}`); code != 400 {
		t.Fatalf("unknown project: %d, want 400", code)
	}
}

// TestShardQuotaSoftAndHard: SLS's per-shard limits are soft (admitted and
// counted); a hard one answers 403 ShardWriteQuotaExceed with SLS's
// message: "shard: N" for a write routed to a shard, "please split shard"
// for a load-balanced one, which goes to any shard with room first.
func TestShardQuotaSoftAndHard(t *testing.T) {
	// f puts puts LogGroups into a Logstore of shards shards, to shard 0
	// (routed) or load-balanced.
	f := func(name string, q *Quota, shards int, routed bool, puts, wantOK, wantOverruns int, wantMsg string) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.DefaultQuota = q
			cfg.Projects[0].Logstores[0].ShardCount = shards
			frozen := time.Now()
			s := startWith(t, cfg, func(s *Server) { s.clock = func() time.Time { return frozen } })
			ok := 0
			for range puts {
				var err error
				if routed {
					key := strings.Repeat("0", 32)
					err = demoClient(s).PostLogStoreLogs(proj, ls1, groupOf(1, "content", "x"), &key)
				} else {
					err = demoClient(s).PutLogs(proj, ls1, groupOf(1, "content", "x"))
				}
				if err == nil {
					ok++
					continue
				}
				wantAnswer(t, err, 403, "ShardWriteQuotaExceed")
				if msg := slsErr(t, err).Message; msg != wantMsg {
					t.Fatalf("message %q, want SLS's %q", msg, wantMsg)
				}
			}
			st := s.Stats()
			if ok != wantOK || st.ShardQuotaOverruns != int64(wantOverruns) {
				t.Fatalf("%d passed, %d overruns; want %d, %d", ok, st.ShardQuotaOverruns, wantOK, wantOverruns)
			}
		})
	}
	const splitShard = "shard write quota exceed, please split shard"
	f("hard", &Quota{RequestsPerSec: 3}, 1, false, 5, 3, 0, splitShard)
	f("hard, load-balanced over 2 shards", &Quota{RequestsPerSec: 3}, 2, false, 8, 6, 0, splitShard)
	f("hard, routed to shard 0 of 2", &Quota{RequestsPerSec: 3}, 2, true, 5, 3, 0, "shard write quota exceed, shard: 0")
	f("soft", &Quota{RequestsPerSec: 3, Soft: true}, 1, false, 5, 5, 1, "") // the 4th overruns and starts over
	f("SLS's default is soft", nil, 1, false, 5, 5, 0, "")

	t.Run("soft from the control API", func(t *testing.T) {
		s := start(t, testConfig())
		if code := postControl(t, s, "/_quota", fmt.Sprintf(`{"project":%q,"logstore":%q,"requestsPerSec":1,"soft":true}`, proj, ls1)); code != 200 {
			t.Fatalf("POST /_quota: %d", code)
		}
		for range 4 {
			wantAnswer(t, demoClient(s).PutLogs(proj, ls1, groupOf(1, "content", "x")), 0, "")
		}
		if st := s.Stats(); st.ShardQuotaOverruns == 0 {
			t.Fatal("no overrun counted")
		}
	})
}
