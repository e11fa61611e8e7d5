package batch

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Defaults for the zero values of the option fields.
const (
	// DefaultMaxBytes is the max.message.bytes used when
	// ValidateOptions.MaxBytes is not set. (Kafka brokers default to
	// 1048588; the relay's default is Filebeat's max_message_bytes.)
	DefaultMaxBytes = 1_000_000
	// DefaultMaxDecompressedBytes bounds the decompressed size of one batch
	// (all wrappers of a MessageSet together) when the options leave it 0.
	DefaultMaxDecompressedBytes = 64 << 20
)

// ErrEmpty is returned by Validate for partition data with no batch at all.
// It wraps kerr.InvalidRecord, which is what Kafka answers to a Produce v3+
// without a record batch. Kafka answers an empty v0-v2 MessageSet with no
// error and appends nothing; a caller that wants to mirror that can test
// errors.Is(err, ErrEmpty) and skip the partition.
var ErrEmpty = fmt.Errorf("partition data holds no record batch: %w", kerr.InvalidRecord)

// Info describes a validated batch.
type Info struct {
	// Magic is the message format: 0 or 1 (MessageSet), 2 (RecordBatch).
	Magic int8
	// Codec is the compression: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
	// For a MessageSet it is the codec of its (first) compressed wrapper
	// message, 0 if no message is compressed.
	Codec int8
	// Records is the record count: for v2 the header's NumRecords, for a
	// MessageSet the number of messages, each magic 1 wrapper with an
	// offset above 0 counting as that offset + 1 (wrappercount.go), other
	// wrappers as the messages they decompress to.
	Records int32
	// Unopened says that compressed records were counted without being
	// decompressed (a compressed v2 batch, a magic 1 wrapper counted by
	// its offset): only the CRC covering them was checked, and the
	// writer's Decode checks the records themselves.
	Unopened bool
	// Attributes are the v2 batch attributes, or the first message's
	// attributes for a MessageSet.
	Attributes int16
	// FirstTimestamp and MaxTimestamp are the v2 header's fields; for a
	// MessageSet the first record's timestamp and the largest one, as
	// Decode reports them (-1 for magic 0), a wrapper counted by its
	// offset giving its own timestamp for all its records.
	FirstTimestamp int64
	MaxTimestamp   int64
	// ProducerID, ProducerEpoch and BaseSequence are the v2 idempotence
	// fields (-1 when the producer is not idempotent, and for a MessageSet).
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
}

// ValidateOptions tune Validate. The zero value is usable, but ProduceVersion
// 0 applies the rules of Produce v0.
type ValidateOptions struct {
	// MaxBytes is max.message.bytes: partition data larger than this is
	// rejected with MESSAGE_TOO_LARGE. Kafka checks each batch (and each
	// wrapper message of a MessageSet); since the relay stores one batch
	// per partition, the whole partition data is checked. 0 means
	// DefaultMaxBytes.
	MaxBytes int
	// ProduceVersion is the version of the Produce request the data came in.
	ProduceVersion int16
	// MaxDecompressedBytes bounds the decompression of compressed
	// MessageSet wrappers (v2 batches are never decompressed here; a
	// magic 1 wrapper counted by its offset is charged its gzip ISIZE, or
	// the smallest size its count needs).
	// 0 means DefaultMaxDecompressedBytes.
	MaxDecompressedBytes int
}

// Validate checks one partition's Records bytes from a Produce request the
// way Apache Kafka's broker does (ProduceRequest.validateRecords, the log's
// analyzeAndValidateRecords and LogValidator) and describes the batch.
//
// Errors wrap the kerr value the partition's response should carry:
// kerr.CorruptMessage (framing, checksums, truncation, trailing bytes),
// kerr.InvalidRecord (rule violations: wrong magic for the produce version,
// more than one batch, bad record count, control or transactional batches,
// nested compression), kerr.UnsupportedCompressionType (unknown codec, zstd
// before Produce v7 or in a MessageSet) and kerr.MessageTooLarge.
//
// Where the relay is stricter than Kafka, on purpose: a partial message or
// batch at the end of the data is CORRUPT_MESSAGE (Kafka silently trims it),
// and data holding two complete v2 batches is INVALID_RECORD even before
// Produce v3 (the WAL stores one batch per entry).
//
// Compressed records are not decompressed when their count is known
// without it: a v2 batch's header, a magic 1 wrapper's offset
// (wrappercount.go). Their CRC, which covers the compressed bytes, is
// checked; the records themselves are checked by the writer's Decode,
// which refuses the entry (a dead letter) if they are corrupt.
//
// Validate does not allocate for v2 batches except to build an error. It is
// safe for concurrent use.
func Validate(data []byte, opt ValidateOptions) (Info, error) {
	if len(data) == 0 {
		return Info{}, ErrEmpty
	}
	maxBytes := opt.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if len(data) > maxBytes {
		return Info{}, fmt.Errorf("partition data is %d bytes, more than max.message.bytes %d: %w",
			len(data), maxBytes, kerr.MessageTooLarge)
	}
	// Both formats start with offset(8) length(4) and have the magic byte
	// at 16: after the v2 partitionLeaderEpoch, after the v0/v1 crc.
	if len(data) < magicOffset+1 {
		return Info{}, corruptf("partition data is only %d bytes, too short for a batch header", len(data))
	}
	switch magic := int8(data[magicOffset]); magic {
	case 2:
		return validateRecordBatch(data, &opt)
	case 0, 1:
		if opt.ProduceVersion >= 3 {
			return Info{}, fmt.Errorf("produce v%d requires record batches with magic 2, got magic %d: %w",
				opt.ProduceVersion, magic, kerr.InvalidRecord)
		}
		return validateMessageSet(data, magic, &opt)
	default:
		return Info{}, corruptf("invalid magic byte %d", magic)
	}
}

// errf builds an error that wraps kind with a message saying what is wrong.
func errf(kind *kerr.Error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, kind)...)
}

func corruptf(format string, args ...any) error {
	return errf(kerr.CorruptMessage, format, args...)
}

func invalidf(format string, args ...any) error {
	return errf(kerr.InvalidRecord, format, args...)
}

// errDecompressedTooLarge marks decompression stopped at the size bound.
// Validate reports it as MESSAGE_TOO_LARGE, Decode as CORRUPT_MESSAGE.
var errDecompressedTooLarge = errors.New("decompressed data exceeds the size limit")
