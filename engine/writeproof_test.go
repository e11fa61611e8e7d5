package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal"
)

// provingCatalog is the static catalog with write proofs: a pair is
// proven once ProveWrite succeeded; ProveWrite answers proveErr.
type provingCatalog struct {
	*StaticCatalog
	mu       sync.Mutex
	proven   map[string]bool // project/logstore/akid
	proveErr error
	proofs   []wal.StreamKey // ProveWrite calls
}

func pairName(project string, cred wal.Credential, logstore string) string {
	return project + "/" + logstore + "/" + cred.AccessKeyID
}

func (c *provingCatalog) WriteProven(project string, cred wal.Credential, logstore string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proven[pairName(project, cred, logstore)]
}

func (c *provingCatalog) ProveWrite(_ context.Context, k wal.StreamKey, e *wal.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proofs = append(c.proofs, k)
	if c.proveErr != nil {
		return c.proveErr
	}
	c.proven[pairName(k.Project, e.Credential, k.Logstore)] = true
	return nil
}

// calls returns the ProveWrite calls so far.
func (c *provingCatalog) calls() []wal.StreamKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wal.StreamKey(nil), c.proofs...)
}

func startProvingRelay(t *testing.T, proveErr error) (*provingCatalog, *MemoryAppender, string) {
	t.Helper()
	cat := &provingCatalog{StaticCatalog: testCatalog(), proven: map[string]bool{}, proveErr: proveErr}
	principal := &Principal{Project: testProject, Credential: wal.Credential{AccessKeyID: testAKID, AccessKeySecret: testSecret}}
	app := &MemoryAppender{}
	srv, err := New(Options{
		Listeners:  []ListenerOptions{{Name: "PLAINTEXT", Protocol: Plaintext, Bind: "127.0.0.1:0", Principal: principal}},
		EventLoops: 1,
		Logger:     testLogger(),
	}, cat, app)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return cat, app, srv.Addr("PLAINTEXT")
}

// The first batch of an unproven pair is handed to ProveWrite and stored
// flagged Delivered; the request's other partitions and later requests are
// stored for delivery as usual, without another proof.
func TestProduceProvesFirstWrite(t *testing.T) {
	cat, app, addr := startProvingRelay(t, nil)
	c := kafkatest.DialT(t, addr, nil)
	good := kafkatest.RecordBatch("a", "b")
	for i := range 2 {
		resp := c.RoundTrip(kafkatest.ProduceRequest(7, 1, testTopic4, map[int32][]byte{0: good, 1: good, 2: good})).(*kmsg.ProduceResponse)
		for p, code := range kafkatest.PartitionErrors(resp) {
			if code != 0 {
				t.Fatalf("request %d partition %d: %v", i, p, kerr.ErrorForCode(code))
			}
		}
	}
	if proofs := cat.calls(); len(proofs) != 1 || proofs[0] != (wal.StreamKey{Project: testProject, Logstore: testTopic4, Partition: 0}) {
		t.Fatalf("ProveWrite calls %v, want one for partition 0", proofs)
	}
	for p := int32(0); p < 3; p++ {
		es := app.Entries(wal.StreamKey{Project: testProject, Logstore: testTopic4, Partition: p})
		if len(es) != 2 {
			t.Fatalf("partition %d holds %d entries, want 2", p, len(es))
		}
		for i, e := range es {
			if want := p == 0 && i == 0; e.Delivered != want {
				t.Errorf("partition %d entry %d: Delivered %v, want %v", p, i, e.Delivered, want)
			}
		}
	}
}

// A refused proof is the producer's answer, and nothing is stored: the
// catalog's Kafka error as it is, any other error as retriable.
func TestProduceProofRefused(t *testing.T) {
	f := func(proveErr error, want int16) {
		t.Helper()
		t.Run(kerr.ErrorForCode(want).Error(), func(t *testing.T) {
			cat, app, addr := startProvingRelay(t, proveErr)
			c := kafkatest.DialT(t, addr, nil)
			resp := c.RoundTrip(kafkatest.ProduceRequest(9, -1, testTopic, map[int32][]byte{0: kafkatest.RecordBatch("x"), 1: kafkatest.RecordBatch("y")})).(*kmsg.ProduceResponse)
			for p, code := range kafkatest.PartitionErrors(resp) {
				if code != want {
					t.Errorf("partition %d: %v, want %v", p, kerr.ErrorForCode(code), kerr.ErrorForCode(want))
				}
			}
			if msg := resp.Topics[0].Partitions[0].ErrorMessage; msg == nil || *msg == "" {
				t.Error("no error message for Produce v9")
			}
			if proofs := cat.calls(); len(proofs) != 2 {
				t.Errorf("ProveWrite calls %v, want one per partition (none proven)", proofs)
			}
			if s := app.Streams(); len(s) != 0 {
				t.Errorf("stored %v after a refused proof", s)
			}
		})
	}
	f(fmt.Errorf("denied by sts or ram, action: log:PostLogStoreLogs: %w", kerr.TopicAuthorizationFailed), kerr.TopicAuthorizationFailed.Code)
	f(errors.New("connection refused"), kerr.LeaderNotAvailable.Code)
}
