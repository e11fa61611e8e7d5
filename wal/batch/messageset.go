package batch

import (
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A v0/v1 MessageSet is messages laid end to end, each:
//
//	offset int64 | messageSize int32 | crc uint32 | magic int8 |
//	attributes int8 | [timestamp int64, magic 1 only] |
//	keyLength int32 | key | valueLength int32 | value
//
// messageSize counts from crc to the end; the CRC (IEEE) covers magic to the
// end. A compressed message ("wrapper") carries, as its value, a compressed
// MessageSet of uncompressed inner messages.
const (
	legacyOverheadV0 = 4 + 1 + 1 + 4 + 4 // crc, magic, attributes, key length, value length
	legacyOverheadV1 = legacyOverheadV0 + 8
)

// legacyMessage is one parsed v0/v1 message; key and value point into the
// set (or the decompressed wrapper value).
type legacyMessage struct {
	magic      int8
	attributes int8
	timestamp  int64 // magic 1 only
	key, value []byte
}

func (m *legacyMessage) codec() int8 { return m.attributes & attrCodecMask }

// readMessage parses the message at the start of b, checking framing, magic,
// CRC and that key and value fill the message exactly. It returns the
// message's total size (with offset and size fields). Errors wrap
// kerr.CorruptMessage, as Kafka's CorruptRecordException.
func readMessage(b []byte) (m legacyMessage, size int, err error) {
	if len(b) < logOverhead {
		return m, 0, corruptf("partial message header (%d bytes) at the end of the message set", len(b))
	}
	n := int32(be32(b[8:]))
	if n < legacyOverheadV0 {
		return m, 0, corruptf("message size %d is less than the minimum %d", n, legacyOverheadV0)
	}
	if int64(n) > int64(len(b)-logOverhead) {
		return m, 0, corruptf("message size %d, but only %d bytes follow: truncated message", n, len(b)-logOverhead)
	}
	size = logOverhead + int(n)
	msg := b[logOverhead:size]
	m.magic = int8(msg[4])
	p := 6
	switch m.magic {
	case 0:
	case 1:
		if n < legacyOverheadV1 {
			return m, 0, corruptf("magic 1 message size %d is less than the minimum %d", n, legacyOverheadV1)
		}
		m.timestamp = int64(be64(msg[p:]))
		p += 8
	default:
		return m, 0, corruptf("invalid message magic %d", m.magic)
	}
	if want, got := be32(msg), crc32.ChecksumIEEE(msg[4:]); want != got {
		return m, 0, corruptf("message crc32 %#08x, computed %#08x", want, got)
	}
	m.attributes = int8(msg[5])
	// The size minimum above guarantees both length fields are present
	// when the key is null or empty; check the rest as we go.
	if m.key, p, err = legacyBytes(msg, p, "key", 4); err != nil {
		return m, 0, err
	}
	if m.value, p, err = legacyBytes(msg, p, "value", 0); err != nil {
		return m, 0, err
	}
	if p != len(msg) {
		return m, 0, corruptf("%d bytes after the message value", len(msg)-p)
	}
	return m, size, nil
}

// legacyBytes reads an int32 length at msg[p:] and that many bytes, leaving
// at least after bytes behind. -1 is null.
func legacyBytes(msg []byte, p int, what string, after int) ([]byte, int, error) {
	if len(msg)-p < 4 {
		return nil, 0, corruptf("message too short for its %s length", what)
	}
	l := int32(be32(msg[p:]))
	p += 4
	if l == -1 {
		return nil, p, nil
	}
	if l < 0 || int64(l) > int64(len(msg)-p-after) {
		return nil, 0, corruptf("message %s length %d, but %d bytes are left", what, l, len(msg)-p-after)
	}
	return msg[p : p+int(l) : p+int(l)], p + int(l), nil
}

// setWalker visits the records of a MessageSet: the uncompressed messages,
// and the inner messages of compressed wrappers, in order.
type setWalker struct {
	dz       *decompressor
	budget   int         // decompressed bytes still allowed
	tooLarge *kerr.Error // what exceeding budget is reported as
	magic    int8        // every message must have it
	codec    int8        // the first wrapper codec seen

	// countWrappers lets walk count a magic 1 wrapper by its offset
	// instead of decompressing it (wrapperCount; Validate only). Such a
	// wrapper is reported to fn once, as m with wrapper nil and counted
	// set to its records; every other call of fn has counted 0.
	countWrappers bool
	counted       int64
	unopened      bool // a wrapper was counted, not opened

	// The messages handed to fn live here rather than in locals: fn is
	// opaque to escape analysis, so a local would be heap-allocated per
	// message.
	msg, wrapper legacyMessage
}

// walk calls fn for every record in set. wrapper is the compressed message
// m came out of, nil for an uncompressed top-level message. Errors from fn
// are returned as they are.
func (w *setWalker) walk(set []byte, fn func(m, wrapper *legacyMessage) error) error {
	if len(set) == 0 {
		return ErrEmpty
	}
	for pos := 0; pos < len(set); {
		b := set[pos:]
		if m, ok := w.otherMagic(b); ok {
			return invalidf("message at byte %d: magic %d differs from the first message's magic %d", pos, m, w.magic)
		}
		m, size, err := readMessage(b)
		if err != nil {
			return prefix(err, "message at byte %d", pos)
		}
		pos += size
		if m.codec() == CodecNone {
			w.msg = m
			if err := fn(&w.msg, nil); err != nil {
				return err
			}
			continue
		}
		w.wrapper = m
		if err := w.checkWrapper(pos - size); err != nil {
			return err
		}
		if w.countWrappers {
			if n, charge, ok := wrapperCount(int64(be64(b)), &w.wrapper, w.budget); ok {
				w.budget -= charge
				w.counted, w.unopened = n, true
				err := fn(&w.wrapper, nil)
				w.counted = 0
				if err != nil {
					return err
				}
				continue
			}
		}
		if err := w.unwrap(pos-size, fn); err != nil {
			return err
		}
	}
	return nil
}

// checkWrapper checks what a compressed message (w.wrapper, at byte pos)
// must be before its value is looked into: a codec a MessageSet may use,
// and a value.
func (w *setWalker) checkWrapper(pos int) error {
	codec := w.wrapper.codec()
	switch {
	case codec == CodecZstd:
		return errf(kerr.UnsupportedCompressionType, "message at byte %d: zstd needs magic 2 record batches", pos)
	case codec > CodecZstd:
		return errf(kerr.UnsupportedCompressionType, "message at byte %d: compression codec %d is unknown", pos, codec)
	case w.wrapper.value == nil:
		return invalidf("compressed message at byte %d has a null value", pos)
	}
	if w.codec == CodecNone {
		w.codec = codec
	}
	return nil
}

// unwrap decompresses w.wrapper (found at byte pos, checked by
// checkWrapper) and visits its inner messages, checking them as Kafka's
// LogValidator does for compressed MessageSets: inner CRCs, same magic as
// the wrapper, no nested compression, at least one message.
func (w *setWalker) unwrap(pos int, fn func(m, wrapper *legacyMessage) error) error {
	wrapper := &w.wrapper
	codec := wrapper.codec()
	inner, err := w.dz.decompress(codec, wrapper.magic, wrapper.value, w.budget)
	if err != nil {
		if errors.Is(err, errDecompressedTooLarge) {
			return errf(w.tooLarge, "message at byte %d: %v (more than %d bytes)", pos, err, w.budget)
		}
		return corruptf("message at byte %d: %s: %v", pos, codecName(codec), err)
	}
	w.budget -= len(inner)
	if len(inner) == 0 {
		return invalidf("compressed message at byte %d holds no inner messages", pos)
	}
	for ipos := 0; ipos < len(inner); {
		b := inner[ipos:]
		if m, ok := w.otherMagic(b); ok {
			return invalidf("message at byte %d: inner message at byte %d: magic %d differs from the wrapper's magic %d",
				pos, ipos, m, w.magic)
		}
		m, size, err := readMessage(b)
		if err != nil {
			return prefix(err, "message at byte %d: inner message at byte %d", pos, ipos)
		}
		if m.codec() != CodecNone {
			return invalidf("compressed message at byte %d holds a compressed inner message at byte %d", pos, ipos)
		}
		ipos += size
		w.msg = m
		if err := fn(&w.msg, wrapper); err != nil {
			return err
		}
	}
	return nil
}

// otherMagic reports the magic of the message at the start of b if it is a
// valid magic other than the set's: Kafka requires one magic per produce
// (INVALID_RECORD). An invalid magic is left to readMessage (CORRUPT).
func (w *setWalker) otherMagic(b []byte) (int8, bool) {
	if len(b) <= magicOffset {
		return 0, false
	}
	m := int8(b[magicOffset])
	return m, m != w.magic && m >= 0 && m <= 2
}

// prefix says where err happened; err keeps its kerr value.
func prefix(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// validateMessageSet validates a v0/v1 MessageSet. A magic 1 wrapper whose
// offset gives its record count is counted by it and its inner messages are
// left to the writer's Decode (wrappercount.go says why); other compressed
// wrappers are decompressed to count and check their inner messages.
func validateMessageSet(data []byte, magic int8, opt *ValidateOptions) (Info, error) {
	limit := opt.MaxDecompressedBytes
	if limit <= 0 {
		limit = DefaultMaxDecompressedBytes
	}
	dz := getDecompressor()
	defer putDecompressor(dz)
	w := setWalker{dz: dz, budget: limit, tooLarge: kerr.MessageTooLarge, magic: magic, countWrappers: true}

	info := Info{
		Magic:          magic,
		FirstTimestamp: -1,
		MaxTimestamp:   -1,
		ProducerID:     -1,
		ProducerEpoch:  -1,
		BaseSequence:   -1,
	}
	var count int64
	err := w.walk(data, func(m, wrapper *legacyMessage) error {
		// A wrapper counted by its offset stands for its inner messages
		// with its own timestamp: the maximum of theirs for the Java
		// producer (CreateTime), the one they all take for LogAppendTime.
		ts := legacyTimestamp(m, wrapper)
		if count == 0 {
			info.FirstTimestamp = ts
		}
		info.MaxTimestamp = max(info.MaxTimestamp, ts)
		count += max(w.counted, 1)
		if count > maxRecordsPerSet {
			return invalidf("message set holds more than %d records", maxRecordsPerSet)
		}
		return nil
	})
	if err != nil {
		return Info{}, err
	}
	info.Codec = w.codec
	info.Unopened = w.unopened
	info.Attributes = int16(int8(data[logOverhead+5])) // walk parsed the first message
	info.Records = int32(count)                        // walk stops past maxRecordsPerSet
	return info, nil
}

// legacyTimestamp is the timestamp Kafka gives m: none for magic 0; for
// magic 1 its own, or its wrapper's when the wrapper says LogAppendTime.
// Negative timestamps mean none.
func legacyTimestamp(m, wrapper *legacyMessage) int64 {
	if m.magic == 0 {
		return -1
	}
	ts := m.timestamp
	if wrapper != nil && wrapper.attributes&attrLogAppendTime != 0 {
		ts = wrapper.timestamp
	}
	if ts < 0 {
		return -1
	}
	return ts
}
