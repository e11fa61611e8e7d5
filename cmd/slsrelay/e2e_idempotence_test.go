package main

import (
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// TestE2EIdempotentRetryAcrossRestart: an idempotent producer whose answer
// was lost to a relay restart sends the batch again (same producer ID,
// epoch and sequence). The restarted relay answers it with the offset it
// got the first time and stores it once, as a Kafka broker does; the next
// sequence, and other producers, are stored as usual.
func TestE2EIdempotentRetryAcrossRestart(t *testing.T) {
	t.Parallel()
	const logstore, id = "e2e-03", int64(1_700_000_000_123)
	r := startTestRelay(t)
	send := func(r *testRelay, value string, id int64, seq int32) int64 {
		t.Helper()
		p, err := dialIgnoringProducer(r.Plain.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		resp, err := p.produceBatch(logstore, 0, kafkatest.ProducerBatch(id, 0, seq, value))
		if err != nil {
			t.Fatalf("produce %q: %v", value, err)
		}
		return resp.Topics[0].Partitions[0].BaseOffset
	}
	for seq := range int32(3) {
		send(r, "before", id, seq)
	}
	last := send(r, "the one retried", id, 3)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r2 := startTestRelayConfig(t, r.cfg)
	next := func() int64 {
		for _, s := range r2.WAL().Stats().Streams {
			if s.Key.Logstore == logstore && s.Key.Partition == 0 {
				return s.NextOffset
			}
		}
		return 0
	}
	before := next()
	if got := send(r2, "the one retried", id, 3); got != last {
		t.Fatalf("retry after restart answered offset %d, want %d (the first answer)", got, last)
	}
	if got := send(r2, "an older one retried", id, 1); got != last-2 {
		t.Fatalf("retry of sequence 1 answered offset %d, want %d", got, last-2)
	}
	// A retry stored again would be counted once indexed, just after its
	// answer: give the indexer that moment before looking.
	time.Sleep(200 * time.Millisecond)
	if n := next(); n != before {
		t.Fatalf("retries stored again: stream end %d -> %d", before, n)
	}
	if got := send(r2, "the next", id, 4); got != before {
		t.Fatalf("next sequence at offset %d, want %d", got, before)
	}
	if got := send(r2, "another producer", id+1, 3); got != before+1 {
		t.Fatalf("another producer at offset %d, want %d", got, before+1)
	}
	// Each record delivered once: 4 before the restart, 2 after. Each
	// relay runs its own stand-in.
	delivered := func() int {
		return r.fake.LogCount(relaytest.Project, logstore) + r2.fake.LogCount(relaytest.Project, logstore)
	}
	waitFor(t, e2eTimeout, "6 logs delivered", func() bool { return delivered() >= 6 })
	time.Sleep(200 * time.Millisecond)
	if n := delivered(); n != 6 {
		t.Fatalf("%d logs delivered, want 6", n)
	}
}

// TestE2ENewProducerAfterFastRestart: a relay restarted within the same
// second hands out producer IDs its previous run never did. Otherwise a
// new idempotent producer (franz-go is one by default) could get an ID
// whose batches the restarted relay remembers from the WAL, and its first
// batches would be answered as retries and never stored.
func TestE2ENewProducerAfterFastRestart(t *testing.T) {
	t.Parallel()
	const logstore = "e2e-04"
	// Start on a second's boundary, so both runs start within one second.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	start := time.Now()
	r := startTestRelay(t)
	recs := loadRecords(0, 20, 2)
	cl := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
	if err := produceKgo(t, cl, logstore, recs[:10]); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := startTestRelayConfig(t, r.cfg)
	t.Logf("restarted after %v", time.Since(start).Round(time.Millisecond))
	cl2 := newKgo(t, r2.kgoOpts(lPlain, relaytest.Password)...)
	if err := produceKgo(t, cl2, logstore, recs[10:]); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	// The WAL's Stats count an entry once indexed, just after its answer.
	want := int64(len(recs))
	waitFor(t, 5*time.Second, "all 20 records stored (the new producer's batches not taken for retries)", func() bool { return r2.walRecords(logstore) >= want })
	if n := r2.walRecords(logstore); n != want {
		t.Fatalf("%d records stored, want %d", n, len(recs))
	}
}
