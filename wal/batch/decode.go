package batch

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Header is a v2 record header.
type Header struct {
	Key   string
	Value []byte // nil when null
}

// Record is one decoded record. Key, Value, header values and the Headers
// slice point into the stored batch or the Decoder's buffers: they are valid
// only until the callback returns. Header keys are ordinary strings.
type Record struct {
	// OffsetDelta is the offset relative to the batch's base offset: the
	// record's offsetDelta for v2, the index of the (inner) message for a
	// MessageSet.
	OffsetDelta int32
	// Timestamp is in milliseconds since the epoch, -1 when the record
	// carries none (magic 0, or a negative timestamp).
	Timestamp int64
	// Key and Value are nil when null.
	Key, Value []byte
	Headers    []Header
}

// DecodeOptions tune Decode.
type DecodeOptions struct {
	// MaxDecompressedBytes bounds the decompressed size of the batch (all
	// wrappers of a MessageSet together). 0 means
	// DefaultMaxDecompressedBytes.
	MaxDecompressedBytes int
}

// Decoder turns stored batches into records. It keeps its decompressors and
// buffers between calls, so a long-lived Decoder decodes without allocating
// in the steady state; in exchange it holds on to a buffer as large as the
// largest batch it decompressed (at most MaxDecompressedBytes). The zero
// value is ready to use. A Decoder is not safe for concurrent use: give each
// delivery goroutine its own.
type Decoder struct {
	dz   decompressor
	rec  Record
	keys map[string]string // interned header keys: few distinct ones recur
}

// maxInternedKeys bounds Decoder.keys against producers inventing keys.
const maxInternedKeys = 256

// Decode calls fn for every record of data, a batch stored after Validate:
// one RecordBatch when magic is 2, a MessageSet when it is 0 or 1. The
// *Record passed to fn is reused; see Record for what it may keep.
//
// Decode checks again what it relies on (framing, CRCs, lengths), since the
// bytes went through disk. Its errors wrap kerr.CorruptMessage, except an
// error returned by fn, which Decode returns as it is, having stopped there.
// A control batch holds no user records and decodes to nothing.
func (d *Decoder) Decode(magic int8, data []byte, opt DecodeOptions, fn func(*Record) error) error {
	limit := opt.MaxDecompressedBytes
	if limit <= 0 {
		limit = DefaultMaxDecompressedBytes
	}
	switch magic {
	case 2:
		return d.decodeBatch(data, limit, fn)
	case 0, 1:
		return d.decodeMessageSet(magic, data, limit, fn)
	}
	return corruptf("cannot decode magic %d", magic)
}

func (d *Decoder) decodeBatch(data []byte, limit int, fn func(*Record) error) error {
	h, records, size, err := readBatch(data)
	if err != nil {
		return err
	}
	if size != len(data) {
		return corruptf("%d bytes of trailing data after the record batch", len(data)-size)
	}
	if h.attributes&attrControl != 0 {
		return nil
	}
	if h.numRecords < 0 {
		return corruptf("record batch reports %d records", h.numRecords)
	}
	codec := h.codec()
	if codec > CodecZstd {
		return corruptf("record batch compression codec %d is unknown", codec)
	}
	if codec != CodecNone {
		if records, err = d.dz.decompress(codec, 2, records, limit); err != nil {
			return decompressError(codec, err)
		}
	}
	logAppend := h.attributes&attrLogAppendTime != 0
	rec := &d.rec
	for i := int32(0); i < h.numRecords; i++ {
		if len(records) == 0 {
			return corruptf("record batch reports %d records but holds %d", h.numRecords, i)
		}
		var v recordView
		if v, records, err = nextRecord(records); err != nil {
			return corruptf("record %d: %v", i, err)
		}
		ts := h.firstTimestamp + v.timestampDelta
		if logAppend {
			ts = h.maxTimestamp
		}
		if ts < 0 {
			ts = -1
		}
		*rec = Record{
			OffsetDelta: v.offsetDelta,
			Timestamp:   ts,
			Key:         v.key,
			Value:       v.value,
			Headers:     d.headers(v),
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if len(records) != 0 {
		return corruptf("%d bytes left after the %d records the batch reports", len(records), h.numRecords)
	}
	return nil
}

// headers decodes v's headers into the reused slice.
func (d *Decoder) headers(v recordView) []Header {
	hs := d.rec.Headers[:0]
	if v.numHeaders == 0 {
		return hs
	}
	b := v.headers
	for range v.numHeaders {
		var k, val []byte
		k, val, b = nextHeader(b)
		hs = append(hs, Header{Key: d.intern(k), Value: val})
	}
	return hs
}

// intern returns k as a string, reusing the string of an earlier equal key.
func (d *Decoder) intern(k []byte) string {
	if s, ok := d.keys[string(k)]; ok { // no allocation for the lookup
		return s
	}
	s := string(k)
	if d.keys == nil {
		d.keys = make(map[string]string)
	}
	if len(d.keys) < maxInternedKeys {
		d.keys[s] = s
	}
	return s
}

func (d *Decoder) decodeMessageSet(magic int8, data []byte, limit int, fn func(*Record) error) error {
	if len(data) == 0 {
		return corruptf("empty message set")
	}
	if len(data) > magicOffset && int8(data[magicOffset]) != magic {
		return corruptf("message set starts with magic %d, stored as magic %d", int8(data[magicOffset]), magic)
	}
	w := setWalker{dz: &d.dz, budget: limit, tooLarge: kerr.CorruptMessage, magic: magic}
	rec := &d.rec
	var index int32
	fromFn := false
	err := w.walk(data, func(m, wrapper *legacyMessage) error {
		*rec = Record{
			OffsetDelta: index,
			Timestamp:   legacyTimestamp(m, wrapper),
			Key:         m.key,
			Value:       m.value,
			Headers:     rec.Headers[:0],
		}
		index++
		err := fn(rec)
		fromFn = err != nil
		return err
	})
	if err != nil && !fromFn && !errors.Is(err, kerr.CorruptMessage) {
		// The walker's rule violations (INVALID_RECORD and the like) were
		// accepted once by Validate; stored data failing them is corrupt.
		return fmt.Errorf("%w: %w", err, kerr.CorruptMessage)
	}
	return err
}

// decompressError wraps a decompression failure for Decode.
func decompressError(codec int8, err error) error {
	if errors.Is(err, errDecompressedTooLarge) {
		return fmt.Errorf("%s: %w: %w", codecName(codec), err, kerr.CorruptMessage)
	}
	return corruptf("%s: %v", codecName(codec), err)
}
