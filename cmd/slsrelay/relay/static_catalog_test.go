package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// With catalog.static, the front end accepts the static projects and keys
// without asking SLS which exist, and the writers still deliver to the
// configured SLS (here the in-process stand-in).
func TestStaticCatalogDelivers(t *testing.T) {
	cfg, err := ParseConfig("static.yaml", []byte(`
data_dir: `+t.TempDir()+`
listeners:
  - name: PLAINTEXT
    protocol: PLAINTEXT
    bind: 127.0.0.1:0
    project: test-project-1
    access_key_id: demo-akid
    access_key_secret: demo-aksecret
sls:
  stand_in: {listen: 127.0.0.1:0}
  linger: 10ms
catalog:
  static:
    projects: {test-project-1: {test-logstore-1: 2}}
    access_keys: {demo-akid: demo-aksecret}
`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	a := r.Addrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Listeners["PLAINTEXT"]), kgo.RequestRetries(0),
		kgo.UnknownTopicRetries(0), kgo.RecordRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const n = 20
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "test-logstore-1", Partition: int32(i % 2), Value: []byte("static")}).FirstErr(); err != nil {
			t.Fatalf("produce to the static logstore: %v", err)
		}
	}
	// test-logstore-2 exists in SLS (the stand-in) but not in the static
	// catalog: the static catalog, not SLS, decides what is accepted.
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "test-logstore-2", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("produce to a logstore the static catalog lacks: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for a.StandIn.LogCount("test-project-1", "test-logstore-1") < n {
		if time.Now().After(deadline) {
			t.Fatalf("the stand-in holds %d logs, want %d", a.StandIn.LogCount("test-project-1", "test-logstore-1"), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := a.StandIn.LogCount("test-project-1", "test-logstore-2"); got != 0 {
		t.Errorf("test-logstore-2 got %d logs", got)
	}
}
