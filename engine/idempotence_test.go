package engine

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A retried batch of an idempotent producer gets the offset it got the
// first time and is stored once; anything else is a new batch.
func TestIdempotentRetryStoredOnce(t *testing.T) {
	r := startRelay(t)
	c := dialRaw(t, r.plain, nil)
	produce := func(batch []byte) int64 {
		t.Helper()
		resp := c.roundTrip(produceRequest(7, -1, testTopic, map[int32][]byte{0: batch})).(*kmsg.ProduceResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("error %d", p.ErrorCode)
		}
		return p.BaseOffset
	}
	f := func(name string, batch []byte, wantOffset int64, wantEntries int) {
		t.Helper()
		if got := produce(batch); got != wantOffset {
			t.Fatalf("%s: base offset %d, want %d", name, got, wantOffset)
		}
		if n := len(r.entries(testTopic, 0)); n != wantEntries {
			t.Fatalf("%s: %d entries stored, want %d", name, n, wantEntries)
		}
	}
	f("first batch", producerBatch(7, 0, 0, "a", "b"), 0, 1)
	f("its retry", producerBatch(7, 0, 0, "a", "b"), 0, 1)
	f("the next batch", producerBatch(7, 0, 2, "c"), 2, 2)
	f("a retry of the first, still within the window", producerBatch(7, 0, 0, "a", "b"), 0, 2)
	f("same sequence, new epoch", producerBatch(7, 1, 0, "a", "b"), 3, 3)
	f("same sequence, other producer", producerBatch(8, 0, 0, "a", "b"), 5, 4)
	f("not idempotent: never deduplicated", recordBatch("x"), 7, 5)
	f("not idempotent, again", recordBatch("x"), 8, 6)
}
