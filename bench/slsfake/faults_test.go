package slsfake

import (
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// put sends one small LogGroup through the SDK.
func put(c *sls.Client, logstore string) error {
	return c.PutLogs(proj, logstore, logGroup("f", 1, uint32(time.Now().Unix())))
}

func TestFaultShare(t *testing.T) {
	f := func(name string, fault Fault, n, wantErrs int, wantStatus int32, wantCode string) {
		t.Run(name, func(t *testing.T) {
			s := start(t, testConfig())
			if _, err := s.AddFault(fault); err != nil {
				t.Fatal(err)
			}
			c := demoClient(s)
			errs := 0
			for range n {
				err := put(c, ls1)
				if err == nil {
					continue
				}
				errs++
				if e := slsErr(t, err); e.HTTPCode != wantStatus || e.Code != wantCode {
					t.Fatalf("got %d %s, want %d %s", e.HTTPCode, e.Code, wantStatus, wantCode)
				}
			}
			// Reads are untouched by a PutLogs-only fault.
			if _, err := c.ListShards(proj, ls1); err != nil && len(fault.Ops) > 0 {
				t.Fatalf("ListShards under a PutLogs fault: %v", err)
			}
			if errs != wantErrs {
				t.Fatalf("%d of %d failed, want %d", errs, n, wantErrs)
			}
			if got := s.LogCount(proj, ls1); got != n-wantErrs {
				t.Fatalf("stored %d logs, want %d", got, n-wantErrs)
			}
		})
	}
	f("30% 500", Fault{Ops: []string{OpPutLogs}, Share: 0.3, Status: 500}, 100, 30, 500, "InternalServerError")
	f("all 503", Fault{Ops: []string{OpPutLogs}, Status: 503}, 10, 10, 503, "ServerBusy")
	f("code only", Fault{Ops: []string{OpPutLogs}, Share: 0.5, ErrorCode: "WriteQuotaExceed"}, 10, 5, 403, "WriteQuotaExceed")
	f("count", Fault{Ops: []string{OpPutLogs}, Status: 500, Count: 3}, 10, 3, 500, "InternalServerError")
	f("other logstore", Fault{Logstore: ls2, Status: 500}, 10, 0, 0, "")
	f("random all", Fault{Share: 1, Random: true, Status: 502, ErrorCode: "BadGateway"}, 5, 5, 502, "BadGateway")
}

func TestFaultLatency(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	if _, err := s.AddFault(Fault{Ops: []string{OpPutLogs}, Latency: 150 * time.Millisecond, Count: 1}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := put(c, ls1); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Fatalf("delayed put took %v, want >= 150ms", d)
	}
	if err := put(c, ls1); err != nil {
		t.Fatal(err)
	}
	// Not timed: on a loaded 2-core machine an undelayed put can take as
	// long; the fault's own bookkeeping says it fired once.
	if st := s.Stats(); st.FaultHits != 1 {
		t.Fatalf("FaultHits = %d, want 1", st.FaultHits)
	}
	if fs := s.Faults(); len(fs) != 0 {
		t.Fatalf("fault still active after its count: %+v", fs)
	}
}

// TestFaultReset: the SDK sees a transport error (it wraps it as a
// ClientError with HTTPCode -1) and nothing is stored.
func TestFaultReset(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	if _, err := s.AddFault(Fault{Ops: []string{OpPutLogs}, Reset: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	e := slsErr(t, put(c, ls1))
	if e.HTTPCode != -1 || e.Code != "ClientError" || !(strings.Contains(e.Message, "reset") || strings.Contains(e.Message, "EOF")) {
		t.Fatalf("got %d %s %q, want a ClientError for a reset connection", e.HTTPCode, e.Code, e.Message)
	}
	if err := put(c, ls1); err != nil {
		t.Fatal(err)
	}
	if n := s.LogCount(proj, ls1); n != 1 {
		t.Fatalf("stored %d logs, want 1", n)
	}
}

func TestOutage(t *testing.T) {
	f := func(mode OutageMode, check func(t *testing.T, e *sls.Error)) {
		t.Run(string(mode), func(t *testing.T) {
			s := start(t, testConfig())
			c := demoClient(s)
			if err := put(c, ls1); err != nil { // leaves an idle keep-alive connection
				t.Fatal(err)
			}
			if err := s.Outage(300*time.Millisecond, mode); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				check(t, slsErr(t, put(c, ls1)))
			}
			deadline := time.Now().Add(3 * time.Second)
			for {
				err := put(c, ls1)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still failing after the outage window: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if n := s.LogCount(proj, ls1); n != 2 {
				t.Fatalf("stored %d logs, want 2", n)
			}
		})
	}
	f(OutageError, func(t *testing.T, e *sls.Error) {
		if e.HTTPCode != 503 || e.Code != "ServerBusy" {
			t.Fatalf("got %d %s, want 503 ServerBusy", e.HTTPCode, e.Code)
		}
	})
	f(OutageReset, func(t *testing.T, e *sls.Error) {
		if e.HTTPCode != -1 {
			t.Fatalf("got %d %s, want a transport error", e.HTTPCode, e.Code)
		}
	})
	f(OutageRefuse, func(t *testing.T, e *sls.Error) {
		// How a reset connection shows depends on when the client hears
		// of it: refused (a new one), reset or EOF (on read), broken pipe
		// (a write onto the reused keep-alive connection after the RST).
		gone := false
		for _, s := range []string{"refused", "reset", "EOF", "broken pipe"} {
			gone = gone || strings.Contains(e.Message, s)
		}
		if e.HTTPCode != -1 || !gone {
			t.Fatalf("got %d %s %q, want the connection refused or reset", e.HTTPCode, e.Code, e.Message)
		}
	})
}

func TestQuota(t *testing.T) {
	f := func(name string, q Quota, logsPerPut, puts int, wantOK func(groupBytes int) int) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Projects[0].Logstores[0].Quota = &q
			cfg.Projects[0].Logstores[0].ShardCount = 1
			// A frozen clock: the buckets never refill, however slowly the
			// puts run.
			frozen := time.Now()
			s := startWith(t, cfg, func(s *Server) { s.clock = func() time.Time { return frozen } })
			c := demoClient(s)
			ok := 0
			now := uint32(time.Now().Unix())
			raw, err := logGroup("q", logsPerPut, now).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			want := wantOK(len(raw))
			for range puts {
				err := c.PutLogs(proj, ls1, logGroup("q", logsPerPut, now))
				if err == nil {
					ok++
					continue
				}
				if e := slsErr(t, err); e.HTTPCode != 403 || e.Code != "ShardWriteQuotaExceed" {
					t.Fatalf("got %d %s, want 403 ShardWriteQuotaExceed", e.HTTPCode, e.Code)
				}
			}
			if ok != want {
				t.Fatalf("%d of %d puts passed, want %d", ok, puts, want)
			}
			if st := s.Stats(); st.QuotaRejections != int64(puts-ok) {
				t.Fatalf("QuotaRejections = %d, want %d", st.QuotaRejections, puts-ok)
			}
		})
	}
	f("requests", Quota{RequestsPerSec: 5}, 1, 8, func(int) int { return 5 })
	f("bytes", Quota{BytesPerSec: 4000}, 10, 20, func(size int) int { return 4000 / size })
	// A group larger than a second's quota passes once, on a full bucket.
	f("bytes larger than quota", Quota{BytesPerSec: 100}, 10, 5, func(int) int { return 1 })
	f("off", Quota{}, 1, 50, func(int) int { return 50 })
}

func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var b tokenBucket
	steps := []struct {
		ms   int
		cost int64
		want bool
	}{
		{0, 600, true},     // full bucket of 1000
		{0, 600, false},    // 400 left
		{100, 400, true},   // 400+100 = 500 left, take 400
		{100, 200, false},  // 100 left
		{1000, 5000, true}, // refilled to 1000: larger than a second's quota passes on a full bucket
		{2000, 1, false},   // -4000 + 1000 = -3000
		{6000, 1000, true}, // back to 1000
	}
	for i, st := range steps {
		if got := b.take(at(st.ms), 1000, st.cost); got != st.want {
			t.Fatalf("step %d: take(%d ms, %d) = %v, want %v (tokens %v)", i, st.ms, st.cost, got, st.want, b.tokens)
		}
	}
	if !b.take(at(6000), 0, 1<<40) {
		t.Fatal("rate 0 must not limit")
	}
}
