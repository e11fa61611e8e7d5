package shardwriter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestWriterLogstoreGoneRefusesNewProduce: once a writer learns from
// PutLogs that SLS deleted its Logstore (404 LogStoreNotExist, which
// makes a dead letter of what was acknowledged), the front end's next
// Partitions for it gets UNKNOWN_TOPIC_OR_PARTITION, as README's table
// says, rather than the cached shard list until its refresh
// (ShardRefresh, 60 s by default): every batch acknowledged meanwhile
// would be one more dead letter.
func TestWriterLogstoreGoneRefusesNewProduce(t *testing.T) {
	e := wpService(t, wpStandIn(t), t.TempDir())
	e.svc.Start()
	if err := e.produce(t, wpOther, 0, wpEntry(wpWriter, "before the deletion")); err != nil {
		t.Fatal(err)
	}
	e.waitDrained(t)
	if err := e.fake.DeleteLogstore(wpProject, wpOther); err != nil {
		t.Fatal(err)
	}
	// Accepted from the cache: nothing has told the relay yet.
	if err := e.produce(t, wpOther, 0, wpEntry(wpWriter, "after the deletion")); err != nil {
		t.Fatalf("Produce just after the deletion: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.wal.DeadLetterCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the batch of the deleted Logstore is not a dead letter after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err := e.cat.Partitions(context.Background(), wpProject, wpWriter, wpOther)
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("Partitions after a writer's PutLogs got LogStoreNotExist: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	// Other Logstores of the project are untouched.
	if _, err := e.cat.Partitions(context.Background(), wpProject, wpWriter, wpLogstore); err != nil {
		t.Errorf("Partitions of another Logstore: %v", err)
	}
}
