package slsfake

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
endpointHost: sls.test
region: cn-test
maxStoredBytes: 1048576
defaultQuota: {bytesPerSec: 0, requestsPerSec: 100}
projects:
  - name: proj-a
    logstores:
      - name: even
        shardCount: 3
      - name: explicit
        quota: {bytesPerSec: 10}
        shards:
          - {id: 0, status: readonly, inclusiveBeginKey: "00", exclusiveEndKey: "ffffffffffffffffffffffffffffffff"}
          - {id: 1, inclusiveBeginKey: "00", exclusiveEndKey: "8"}
          - {id: 2, inclusiveBeginKey: "8", exclusiveEndKey: "ffffffffffffffffffffffffffffffff"}
accessKeys:
  - id: ak
    secret: sk
    projects:
      proj-a: {read: true}
faults:
  - {ops: [PutLogs], share: 0.25, status: 503, latency: 20ms, for: 1m}
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.TimeWindow != DefaultTimeWindow || s.cfg.EndpointHost != "sls.test" || s.cfg.DefaultQuota.RequestsPerSec != 100 {
		t.Fatalf("normalized config = %+v", s.cfg)
	}
	even, _ := s.Shards("proj-a", "even")
	explicit, _ := s.Shards("proj-a", "explicit")
	if len(even) != 3 || len(explicit) != 3 || explicit[1].ExclusiveEndKey != "80000000000000000000000000000000" || explicit[0].Status != StatusReadOnly {
		t.Fatalf("shards: even %+v explicit %+v", even, explicit)
	}
	if q := s.projects["proj-a"].logstores["explicit"].quota; q != (Quota{BytesPerSec: 10}) {
		t.Fatalf("explicit quota = %+v", q)
	}
	fs := s.Faults()
	if len(fs) != 1 || fs[0].Fault.Latency != 20*time.Millisecond || fs[0].Fault.For != time.Minute || fs[0].Fault.Status != 503 {
		t.Fatalf("faults = %+v", fs)
	}

	f := func(name, yaml, wantErr string) {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(yaml))
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("ParseConfig = %v, want an error containing %q", err, wantErr)
			}
		})
	}
	f("unknown field", "projects: [{name: abc, logstore: []}]", "field logstore not found")
	f("bad project name", "projects: [{name: Bad_Name}]", "project name")
	f("duplicate logstore", "projects: [{name: abc, logstores: [{name: x}, {name: x}]}]", "twice")
	f("bad fault", "faults: [{share: 2}]", "share")
	f("bad fault op", "faults: [{ops: [Nope]}]", "unknown operation")
	f("bad shard count", "projects: [{name: abc, logstores: [{name: x, shardCount: 300}]}]", "shards")

	if _, err := ParseConfig(nil); err != nil {
		t.Fatalf("empty config: %v", err)
	}
}

func TestDefaultConfig(t *testing.T) {
	s, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for ls, n := range map[string]int{ls1: 2, ls2: 4} {
		shards, err := s.Shards(proj, ls)
		if err != nil || len(shards) != n {
			t.Fatalf("%s: %d shards, %v; want %d", ls, len(shards), err, n)
		}
	}
	if q := *s.cfg.DefaultQuota; q != (Quota{BytesPerSec: 5 << 20, RequestsPerSec: 500, Soft: true}) {
		t.Fatalf("default quota = %+v", q)
	}
	if k := s.keys["demo-akid"]; k == nil || k.cfg.Secret != "demo-aksecret" || !allowed(k.policy, "log:PostLogStoreLogs", s.resourceOf(OpPutLogs, proj, ls1)) || !allowed(k.policy, "log:GetProject", s.resourceOf(OpGetProject, proj, "")) {
		t.Fatalf("demo key = %+v", k)
	}
}

// TestExampleConfig keeps cmd/slsfake/example.yaml loadable.
func TestExampleConfig(t *testing.T) {
	cfg, err := LoadConfig("../../cmd/slsfake/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if shards, err := s.Shards("test-project-1", "after-a-split"); err != nil || len(shards) != 3 {
		t.Fatalf("after-a-split: %v, %v", shards, err)
	}
	if len(s.Faults()) != 1 {
		t.Fatalf("faults = %+v", s.Faults())
	}
}
