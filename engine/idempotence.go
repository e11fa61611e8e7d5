package engine

import (
	"sync"
	"time"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// producerWindow is how many recent batches per idempotent producer and
// stream are remembered: Kafka clients keep at most 5 requests in flight
// per connection, so a retry repeats one of the last 5.
const producerWindow = 5

// producerIdle is how long an idempotent producer's batches are remembered
// after its last batch to a stream.
const producerIdle = 15 * time.Minute

// dedup remembers the last batches each idempotent producer stored in each
// stream, so that a retried batch (same producer ID, epoch and sequence
// numbers — the client resends after a lost answer or a timeout) is
// answered with the offset it got the first time instead of being stored
// again, as a Kafka broker does. State lives in memory; after a restart
// the relay rebuilds it from the WAL's last entries per stream (see
// Server.RememberStored). Safe for concurrent use.
type dedup struct {
	mu sync.Mutex
	m  map[dedupKey]*producerBatches
}

// dedupKey is a Kafka topic partition and a producer: sequence numbers
// count per topic partition. Topics "app" and "app.json" write to one
// stream but are two partitions to the producer, each with sequences from
// 0, so the JSON flag is part of the key.
type dedupKey struct {
	stream     wal.StreamKey
	json       bool
	producerID int64
}

type producerBatches struct {
	epoch   int16
	recent  [producerWindow]seqBatch
	next    int // where the next batch is remembered
	touched time.Time
}

type seqBatch struct {
	first, last int32
	offset      int64
	valid       bool
}

// stored reports the base offset of a batch already stored, if b repeats one.
func (d *dedup) stored(k wal.StreamKey, json bool, producerID int64, epoch int16, first, last int32) (int64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.m[dedupKey{k, json, producerID}]
	if p == nil || p.epoch != epoch {
		return 0, false
	}
	for _, b := range p.recent {
		if b.valid && b.first == first && b.last == last {
			p.touched = time.Now()
			return b.offset, true
		}
	}
	return 0, false
}

// remember records a batch that was stored at offset.
func (d *dedup) remember(k wal.StreamKey, json bool, producerID int64, epoch int16, first, last int32, offset int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[dedupKey]*producerBatches{}
	}
	key := dedupKey{k, json, producerID}
	p := d.m[key]
	if p != nil && epoch < p.epoch {
		// An older epoch's batch (a dead letter replayed at the end of
		// the stream, say) must not replace the current epoch's window.
		return
	}
	if p == nil || p.epoch != epoch {
		p = &producerBatches{epoch: epoch}
		d.m[key] = p
	}
	p.recent[p.next] = seqBatch{first: first, last: last, offset: offset, valid: true}
	p.next = (p.next + 1) % producerWindow
	p.touched = time.Now()
}

// forgetIdle drops producers idle for producerIdle; the reaper calls it.
func (d *dedup) forgetIdle(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, p := range d.m {
		if now.Sub(p.touched) > producerIdle {
			delete(d.m, k)
		}
	}
}

// RememberStored tells the server about a batch stored before it started —
// read back from the WAL after a restart — from the start of its data (at
// least batch.RecordBatchHeaderLen bytes) and whether it came through the
// stream's ".json" topic (wal.Entry.JSON): a retry of it by an idempotent
// producer is then answered with its offset instead of being stored again.
// Batches of no idempotent producer are ignored. Call it in offset order
// per stream; safe for concurrent use.
func (s *Server) RememberStored(k wal.StreamKey, json bool, baseOffset int64, records int32, head []byte) {
	id, epoch, seq, ok := batch.ProducerOf(head)
	if !ok || records <= 0 {
		return
	}
	s.dedup.remember(k, json, id, epoch, seq, seq+records-1, baseOffset)
}
