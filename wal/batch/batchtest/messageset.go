package batchtest

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Message encodes one v0 or v1 message with its size and CRC filled in.
// ts is dropped for magic 0, which has no timestamp. attrs carries the
// codec of a wrapper message; value is then the compressed inner set.
func Message(magic int8, offset int64, attrs int8, ts int64, key, value []byte) []byte {
	var b []byte
	if magic == 0 {
		m := kmsg.MessageV0{Offset: offset, Magic: 0, Attributes: attrs, Key: key, Value: value}
		b = m.AppendTo(nil)
	} else {
		m := kmsg.MessageV1{Offset: offset, Magic: 1, Attributes: attrs, Timestamp: ts, Key: key, Value: value}
		b = m.AppendTo(nil)
	}
	binary.BigEndian.PutUint32(b[lengthAt:], uint32(len(b)-logOverhead))
	return FixMessageCRC(b)
}

// MessageSet builds a MessageSet of recs (their headers are dropped: the
// format has none): plain messages for codec none, otherwise one wrapper
// message holding them compressed with c, at the offset and time of the
// last, with wrapperAttrs or-ed into its attributes (LogAppendTime, say).
func MessageSet(tb testing.TB, magic int8, recs []Record, c Codec, wrapperAttrs int8) []byte {
	tb.Helper()
	var inner []byte
	maxTS := int64(-1)
	for i, r := range recs {
		inner = append(inner, Message(magic, int64(i), 0, r.Timestamp, r.Key, r.Value)...)
		maxTS = max(maxTS, r.Timestamp)
	}
	if c.ID == None.ID {
		return inner
	}
	return Message(magic, int64(len(recs)-1), c.ID|wrapperAttrs, maxTS, nil, c.Compress(tb, inner))
}

// FixMessageCRC recomputes the CRC of the first message in b, as far as its
// size field reaches, after a test has changed its bytes; it returns b.
func FixMessageCRC(b []byte) []byte {
	end := logOverhead + int(binary.BigEndian.Uint32(b[lengthAt:]))
	binary.BigEndian.PutUint32(b[messageCRCAt:], crc32.ChecksumIEEE(b[messageCRCFrom:end]))
	return b
}
