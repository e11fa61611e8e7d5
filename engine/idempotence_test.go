package engine

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
)

// A retried batch of an idempotent producer gets the offset it got the
// first time and is stored once; anything else is a new batch.
func TestIdempotentRetryStoredOnce(t *testing.T) {
	r := startRelay(t)
	c := kafkatest.DialT(t, r.plain, nil)
	produceTo := func(topic string, batch []byte) int64 {
		t.Helper()
		resp := c.RoundTrip(kafkatest.ProduceRequest(7, -1, topic, map[int32][]byte{0: batch})).(*kmsg.ProduceResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("error %d", p.ErrorCode)
		}
		return p.BaseOffset
	}
	produce := func(batch []byte) int64 { t.Helper(); return produceTo(testTopic, batch) }
	f := func(name string, batch []byte, wantOffset int64, wantEntries int) {
		t.Helper()
		if got := produce(batch); got != wantOffset {
			t.Fatalf("%s: base offset %d, want %d", name, got, wantOffset)
		}
		if n := len(r.entries(testTopic, 0)); n != wantEntries {
			t.Fatalf("%s: %d entries stored, want %d", name, n, wantEntries)
		}
	}
	f("first batch", kafkatest.ProducerBatch(7, 0, 0, "a", "b"), 0, 1)
	f("its retry", kafkatest.ProducerBatch(7, 0, 0, "a", "b"), 0, 1)
	f("the next batch", kafkatest.ProducerBatch(7, 0, 2, "c"), 2, 2)
	f("a retry of the first, still within the window", kafkatest.ProducerBatch(7, 0, 0, "a", "b"), 0, 2)
	f("same sequence, new epoch", kafkatest.ProducerBatch(7, 1, 0, "a", "b"), 3, 3)
	f("same sequence, other producer", kafkatest.ProducerBatch(8, 0, 0, "a", "b"), 5, 4)
	f("not idempotent: never deduplicated", kafkatest.RecordBatch("x"), 7, 5)
	f("not idempotent, again", kafkatest.RecordBatch("x"), 8, 6)
	// testTopic+".json" writes to the same stream but is another Kafka
	// partition to the producer, with its own sequences from 0.
	if got := produceTo(testTopic+".json", kafkatest.ProducerBatch(7, 0, 0, "a", "b")); got != 9 {
		t.Fatalf("same producer and sequences on the .json topic: offset %d, want 9 (a new batch)", got)
	}
	if got := produceTo(testTopic+".json", kafkatest.ProducerBatch(7, 0, 0, "a", "b")); got != 9 {
		t.Fatalf("its retry: offset %d, want 9", got)
	}
	if n := len(r.entries(testTopic, 0)); n != 7 {
		t.Fatalf("%d entries stored, want 7", n)
	}
}

// An older epoch's batch does not replace the window of the current one:
// after a dead letter of epoch 0 is replayed, retries of epoch 1 are still
// recognised.
func TestDedupKeepsNewestEpoch(t *testing.T) {
	var d dedup
	k := wal.StreamKey{Project: "p", Logstore: "l"}
	d.remember(k, false, 7, 1, 0, 4, 100)
	d.remember(k, false, 7, 0, 0, 4, 200) // replayed, older epoch
	if off, ok := d.stored(k, false, 7, 1, 0, 4); !ok || off != 100 {
		t.Fatalf("retry of epoch 1: %d %v, want 100 true", off, ok)
	}
	if _, ok := d.stored(k, true, 7, 1, 0, 4); ok {
		t.Fatal("the .json topic's partition shares the plain topic's sequences")
	}
}
