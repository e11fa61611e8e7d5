package batchtest

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RecordBatch builds a RecordBatch (magic 2) of recs compressed with c, as a
// producer that is neither idempotent nor transactional sends it. mod, if
// not nil, may change any field (counts, attributes, producer, even
// Records) before the length and CRC are computed, so that a test can make
// a batch that is wrong in exactly one way and still passes the CRC check.
func RecordBatch(tb testing.TB, recs []Record, c Codec, mod func(*kmsg.RecordBatch)) []byte {
	tb.Helper()
	b := recordBatchHeader(recs, c.ID)
	b.Records = c.Compress(tb, EncodeRecords(recs, b.FirstTimestamp))
	return finishRecordBatch(b, mod)
}

// UncompressedRecordBatch is RecordBatch with codec none. Nothing in it can
// fail, so it needs no testing.TB: for helpers that build batches where no
// test is at hand, such as in the goroutines of a load test.
func UncompressedRecordBatch(recs []Record, mod func(*kmsg.RecordBatch)) []byte {
	b := recordBatchHeader(recs, None.ID)
	b.Records = EncodeRecords(recs, b.FirstTimestamp)
	return finishRecordBatch(b, mod)
}

// recordBatchHeader fills the header as Kafka's producer does: no leader
// epoch or producer yet (-1), timestamps from the records (-1 for none).
func recordBatchHeader(recs []Record, codec int8) kmsg.RecordBatch {
	first, maxTS := int64(-1), int64(-1)
	if len(recs) > 0 {
		first = recs[0].Timestamp
		for _, r := range recs {
			maxTS = max(maxTS, r.Timestamp)
		}
	}
	return kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(codec),
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
	}
}

func finishRecordBatch(b kmsg.RecordBatch, mod func(*kmsg.RecordBatch)) []byte {
	if mod != nil {
		mod(&b)
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[lengthAt:], uint32(len(out)-logOverhead))
	return FixRecordBatchCRC(out)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FixRecordBatchCRC recomputes the CRC32C of the RecordBatch b, which must
// be the whole batch, after a test has changed its bytes; it returns b.
func FixRecordBatchCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchCRCFrom:], castagnoli))
	return b
}
