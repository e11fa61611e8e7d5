package batchtest

import "github.com/twmb/franz-go/pkg/kmsg"

// Record is a record as a test produces it and expects it back. Nil and
// empty keys and values are different records: Kafka encodes null apart.
type Record struct {
	Key, Value []byte
	Headers    []kmsg.Header // v2 only: a MessageSet has no headers
	Timestamp  int64         // ms since the epoch
}

// EncodeRecords encodes recs as the records of a v2 batch whose first
// timestamp is base, offset deltas counting from 0.
func EncodeRecords(recs []Record, base int64) []byte {
	var out []byte
	for i, r := range recs {
		kr := kmsg.Record{
			TimestampDelta64: r.Timestamp - base,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
			Headers:          r.Headers,
		}
		// kmsg writes Length as given; with 0 it takes one varint byte,
		// so the body is what follows that byte.
		kr.Length = int32(len(kr.AppendTo(nil)) - 1)
		out = kr.AppendTo(out)
	}
	return out
}
