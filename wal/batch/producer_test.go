package batch

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProducerOf reads the idempotent producer fields from the start of a
// RecordBatch, and refuses what is not one of an idempotent producer.
func TestProducerOf(t *testing.T) {
	v2 := func(id int64, epoch int16, seq int32) []byte {
		b := kmsg.NewRecordBatch()
		b.Magic, b.ProducerID, b.ProducerEpoch, b.FirstSequence, b.NumRecords = 2, id, epoch, seq, 1
		return b.AppendTo(nil)
	}
	f := func(name string, head []byte, wantID int64, wantEpoch int16, wantSeq int32, wantOK bool) {
		t.Helper()
		id, epoch, seq, ok := ProducerOf(head)
		if ok != wantOK || ok && (id != wantID || epoch != wantEpoch || seq != wantSeq) {
			t.Fatalf("%s: %d/%d/%d %v, want %d/%d/%d %v", name, id, epoch, seq, ok, wantID, wantEpoch, wantSeq, wantOK)
		}
	}
	f("idempotent", v2(1<<40, 3, 77), 1<<40, 3, 77, true)
	f("exactly the header", v2(5, 0, 0)[:RecordBatchHeaderLen], 5, 0, 0, true)
	f("not idempotent", v2(-1, -1, -1), 0, 0, 0, false)
	f("short", v2(5, 0, 0)[:RecordBatchHeaderLen-1], 0, 0, 0, false)
	old := v2(5, 0, 0)
	old[magicOffset] = 1
	f("magic 1", old, 0, 0, 0, false)
	f("empty", nil, 0, 0, 0, false)
}
