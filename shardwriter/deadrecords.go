package shardwriter

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// Offsets in a RecordBatch (Kafka's DefaultRecordBatch): baseOffset int64,
// length int32 (of what follows it), partitionLeaderEpoch int32, magic
// int8, crc uint32 (CRC-32C of everything after it).
const (
	rbLengthAt = 8
	rbOverhead = 12 // baseOffset and length
	rbCRCAt    = 17
	rbCRCFrom  = 21
)

var rbCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// entryOfRecords returns a new entry holding only the records of e whose
// offset deltas are in deltas (ascending; by their place in e, as logRef
// counts them), as an uncompressed RecordBatch
// (magic 2) with their value, key, headers and timestamp: a dead letter
// that `slsrelay dlq replay` sends again holds exactly the refused
// records. Its BaseOffset is the old offset of the first one.
func entryOfRecords(dec *batch.Decoder, e *wal.Entry, deltas []int32) (*wal.Entry, error) {
	var recs []kmsg.Record
	first, maxTS := int64(-1), int64(-1)
	want := deltas
	var place int32
	err := dec.Decode(e.Magic, e.Data, batch.DecodeOptions{}, func(r *batch.Record) error {
		place++
		if len(want) == 0 || place-1 != want[0] {
			return nil
		}
		want = want[1:]
		if len(recs) == 0 {
			first = r.Timestamp
		}
		maxTS = max(maxTS, r.Timestamp)
		kr := kmsg.Record{
			OffsetDelta: int32(len(recs)),
			Key:         cloneNil(r.Key),
			Value:       cloneNil(r.Value),
			// A record without timestamp (-1) keeps none: the delta is
			// from first, which is then -1 too for the first record.
			TimestampDelta64: r.Timestamp - first,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: cloneNil(h.Value)})
		}
		recs = append(recs, kr)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot decode entry at offset %d again: %w", e.BaseOffset, err)
	}
	if len(want) > 0 || len(recs) == 0 {
		return nil, fmt.Errorf("entry at offset %d has no record at offset delta %d", e.BaseOffset, want[0])
	}
	var body []byte
	for i := range recs {
		n := len(body)
		body = recs[i].AppendTo(body) // Length 0: one byte
		recs[i].Length = int32(len(body) - n - 1)
		body = recs[i].AppendTo(body[:n])
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              body,
	}
	data := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(data[rbLengthAt:], uint32(len(data)-rbOverhead))
	binary.BigEndian.PutUint32(data[rbCRCAt:], crc32.Checksum(data[rbCRCFrom:], rbCastagnoli))
	ne := *e
	ne.BaseOffset = e.BaseOffset + int64(deltas[0])
	ne.Magic, ne.Codec, ne.Records, ne.Data = 2, 0, int32(len(recs)), data
	return &ne, nil
}

// holdsExactly reports whether e holds n records, so that n refused ones
// are all of them. A v2 batch holds e.Records: Decode checks the header's
// count. A MessageSet is counted by decoding it: Validate takes a magic 1
// wrapper's count from its offset (batch/wrappercount.go), which a producer
// may get wrong, so e.Records is not what the writer delivered.
func holdsExactly(dec *batch.Decoder, e *wal.Entry, n int) bool {
	if e.Magic == 2 {
		return int(e.Records) == n
	}
	got := 0
	err := dec.Decode(e.Magic, e.Data, batch.DecodeOptions{}, func(*batch.Record) error {
		got++
		return nil
	})
	return err == nil && got == n
}

// cloneNil copies b, keeping nil (a null key or value) nil.
func cloneNil(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
