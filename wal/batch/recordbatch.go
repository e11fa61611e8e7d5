package batch

import (
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Layout of a v2 RecordBatch header (KIP-98), all big-endian:
//
//	baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 |
//	magic int8 | crc uint32 | attributes int16 | lastOffsetDelta int32 |
//	firstTimestamp int64 | maxTimestamp int64 | producerId int64 |
//	producerEpoch int16 | baseSequence int32 | numRecords int32 | records
//
// batchLength counts everything after itself; the CRC (Castagnoli) covers
// attributes through the end of the batch.
const (
	logOverhead          = 12 // baseOffset + batchLength (also v0/v1 offset + size)
	magicOffset          = 16
	crcOffset            = 17
	attributesOffset     = 21
	lastOffsetDeltaOff   = 23
	firstTimestampOffset = 27
	maxTimestampOffset   = 35
	producerIDOffset     = 43
	producerEpochOffset  = 51
	baseSequenceOffset   = 53
	numRecordsOffset     = 57
	batchHeaderLen       = 61
	minBatchLength       = batchHeaderLen - logOverhead // 49
)

// RecordBatchHeaderLen is how many bytes of a RecordBatch (magic 2) hold
// its header, producer fields included: what ProducerOf needs.
const RecordBatchHeaderLen = batchHeaderLen

// ProducerOf returns the idempotent producer fields of the RecordBatch that
// head starts (at least RecordBatchHeaderLen bytes of it): ok is false for
// another magic, a short head, or a batch of no idempotent producer. It
// checks no CRC: for batches validated when they were stored.
func ProducerOf(head []byte) (producerID int64, epoch int16, baseSequence int32, ok bool) {
	if len(head) < batchHeaderLen || int8(head[magicOffset]) != 2 {
		return 0, 0, 0, false
	}
	producerID = int64(be64(head[producerIDOffset:]))
	epoch = int16(be16(head[producerEpochOffset:]))
	baseSequence = int32(be32(head[baseSequenceOffset:]))
	return producerID, epoch, baseSequence, producerID >= 0 && baseSequence >= 0
}

// Batch attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is a parsed v2 batch header.
type batchHeader struct {
	baseOffset      int64
	attributes      int16
	lastOffsetDelta int32
	firstTimestamp  int64
	maxTimestamp    int64
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
	numRecords      int32
}

func (h *batchHeader) codec() int8 { return int8(h.attributes & attrCodecMask) }

// readBatch checks the framing and the CRC of the v2 batch at the start of
// data and parses its header. It returns the records section (still
// compressed if the batch is) and the batch's total size; data may continue
// past it. Errors wrap kerr.CorruptMessage.
func readBatch(data []byte) (h batchHeader, records []byte, size int, err error) {
	if len(data) < batchHeaderLen {
		return h, nil, 0, corruptf("record batch truncated: %d bytes, the header alone is %d", len(data), batchHeaderLen)
	}
	length := int32(be32(data[8:]))
	if length < minBatchLength {
		return h, nil, 0, corruptf("record batch length %d is less than the minimum %d", length, minBatchLength)
	}
	// On 32-bit platforms int(length)+12 cannot overflow either: length
	// is a positive int32 well below MaxInt32-12 or compared as int64.
	if int64(length) > int64(len(data)-logOverhead) {
		return h, nil, 0, corruptf("record batch length %d, but only %d bytes follow it", length, len(data)-logOverhead)
	}
	size = logOverhead + int(length)
	if m := int8(data[magicOffset]); m != 2 {
		return h, nil, 0, corruptf("record batch magic %d, want 2", m)
	}
	want := be32(data[crcOffset:])
	if got := crc32.Checksum(data[attributesOffset:size], castagnoli); got != want {
		return h, nil, 0, corruptf("record batch crc32c %#08x, computed %#08x", want, got)
	}
	h = batchHeader{
		baseOffset:      int64(be64(data)),
		attributes:      int16(be16(data[attributesOffset:])),
		lastOffsetDelta: int32(be32(data[lastOffsetDeltaOff:])),
		firstTimestamp:  int64(be64(data[firstTimestampOffset:])),
		maxTimestamp:    int64(be64(data[maxTimestampOffset:])),
		producerID:      int64(be64(data[producerIDOffset:])),
		producerEpoch:   int16(be16(data[producerEpochOffset:])),
		baseSequence:    int32(be32(data[baseSequenceOffset:])),
		numRecords:      int32(be32(data[numRecordsOffset:])),
	}
	return h, data[batchHeaderLen:size], size, nil
}

// validateRecordBatch validates partition data whose first batch has magic 2.
func validateRecordBatch(data []byte, opt *ValidateOptions) (Info, error) {
	h, records, size, err := readBatch(data)
	if err != nil {
		return Info{}, err
	}
	if size < len(data) {
		return Info{}, trailingAfterBatch(data[size:], opt.ProduceVersion)
	}

	codec := h.codec()
	if codec > CodecZstd {
		return Info{}, errf(kerr.UnsupportedCompressionType, "record batch compression codec %d is unknown", codec)
	}
	if codec == CodecZstd && opt.ProduceVersion < 7 {
		return Info{}, errf(kerr.UnsupportedCompressionType,
			"produce v%d may not use zstd compression (needs v7)", opt.ProduceVersion)
	}
	// The relay has no transaction coordinator: a transactional batch could
	// never be committed, and clients must not write control batches.
	if h.attributes&attrControl != 0 {
		return Info{}, invalidf("clients may not write control batches")
	}
	if h.attributes&attrTransactional != 0 {
		return Info{}, invalidf("transactional batches are not supported")
	}
	if h.baseOffset != 0 {
		return Info{}, invalidf("record batch base offset %d, clients must send 0", h.baseOffset)
	}
	if h.numRecords <= 0 {
		return Info{}, invalidf("record batch reports %d records", h.numRecords)
	}
	if int64(h.lastOffsetDelta)+1 != int64(h.numRecords) {
		return Info{}, invalidf("record batch lastOffsetDelta %d inconsistent with %d records", h.lastOffsetDelta, h.numRecords)
	}
	if h.producerID >= 0 && h.baseSequence < 0 {
		return Info{}, invalidf("record batch of producer id %d has invalid base sequence %d", h.producerID, h.baseSequence)
	}
	if codec == CodecNone {
		if err := checkRecords(records, h.numRecords); err != nil {
			return Info{}, err
		}
	}
	return Info{
		Magic:          2,
		Codec:          codec,
		Records:        h.numRecords,
		Attributes:     h.attributes,
		FirstTimestamp: h.firstTimestamp,
		MaxTimestamp:   h.maxTimestamp,
		ProducerID:     h.producerID,
		ProducerEpoch:  h.producerEpoch,
		BaseSequence:   h.baseSequence,
		Unopened:       codec != CodecNone,
	}, nil
}

// trailingAfterBatch explains bytes left after the first batch. A complete
// second batch is a rule violation (INVALID_RECORD, as Kafka says for
// Produce v3+ or for a magic change); anything shorter is a truncated or
// garbage tail (CORRUPT_MESSAGE; Kafka would trim it silently).
func trailingAfterBatch(rest []byte, produceVersion int16) error {
	if len(rest) >= magicOffset+1 {
		n := int32(be32(rest[8:]))
		m := int8(rest[magicOffset])
		if n >= legacyOverheadV0 && m >= 0 && m <= 2 && int64(n) <= int64(len(rest)-logOverhead) {
			if m != 2 {
				return invalidf("second batch has magic %d, the first has magic 2", m)
			}
			return invalidf("produce v%d partition data holds more than one record batch; exactly one is allowed", produceVersion)
		}
	}
	return corruptf("%d bytes of trailing data after the record batch", len(rest))
}

// checkRecords walks the records of an uncompressed batch: every record must
// parse and exactly want of them must fill the section. Kafka reports these
// failures as InvalidRecordException (INVALID_RECORD).
func checkRecords(b []byte, want int32) error {
	for i := int32(0); i < want; i++ {
		if len(b) == 0 {
			return invalidf("record batch reports %d records but holds %d", want, i)
		}
		var err error
		if _, b, err = nextRecord(b); err != nil {
			return invalidf("record %d: %v", i, err)
		}
	}
	if len(b) != 0 {
		return invalidf("%d bytes left after the %d records the batch reports", len(b), want)
	}
	return nil
}
