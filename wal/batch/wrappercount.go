package batch

import (
	"bytes"
	"encoding/binary"

	"github.com/klauspost/compress/snappy"
)

// Counting a magic 1 wrapper without decompressing it.
//
// What the relay promises a producer is that nothing it acknowledges is
// something it will refuse: the batch is well framed, its checksums hold,
// its rules are Kafka's. For a v2 RecordBatch the ack path checks the CRC
// (which covers the compressed records) and takes the record count from
// the header; it never decompresses. A corrupt deflate stream under a valid
// CRC is found by the writer, which cannot decode the entry and keeps it as
// a dead letter (shardwriter.ErrUndecodable; before the first write of a
// key is proven it is refused with INVALID_RECORD instead).
//
// A magic 1 wrapper is the same thing in the older format: its CRC (IEEE,
// crc to the end of the value) covers the compressed inner messages just as
// the v2 CRC covers the compressed records, and what is missing is only the
// record count, which Kafka put in the wrapper's offset. Kafka's message
// format documentation ("Old Message Format", kafka.apache.org/documentation
// /#messageset) says of magic 1: "to avoid server side re-compression, only
// the wrapper message will be assigned an offset. The inner messages will
// have relative offsets. The absolute offset can be computed using the
// offset from the outer message, which corresponds to the offset assigned
// to the last inner message." KIP-31 (cwiki.apache.org/confluence/display/
// KAFKA/KIP-31+-+Move+to+relative+offsets+in+compressed+message+sets) moved
// the producer to that scheme: inner messages carry relative offsets 0..n-1,
// and the producer writes the wrapper's offset as the relative offset of
// the last inner message, n-1. The Java producer (its MemoryRecordsBuilder
// writes the wrapper at the last offset) and franz-go (kgo/sink.go:
// appendMessageTo with int64(len(b.records)-1)) write n-1.
//
// Not every producer does. Sarama (produce_set.go, Version >= V0_10) gives
// the inner messages relative offsets but leaves the wrapper's at 0;
// librdkafka (rdkafka_msgset_writer.c, rd_kafka_msgset_writer_compress:
// the wrapper is written with Offset 0) and brod/kafka_protocol do the
// same, and Kafka's own reader accepts it (AbstractLegacyRecordBatch: "The
// outer offset may be 0 if this is produce data from certain versions of
// librdkafka"; a non-zero wrapper offset need only be at least the last
// inner offset). A 0 cannot be told from a wrapper of one message, so a
// wrapper at offset 0 is decompressed and counted, as before: sarama and
// kcat at magic 1 take the exact path, Java and franz-go the fast one.
//
// So Validate counts a magic 1 wrapper whose offset W is above 0 as W+1
// records without decompressing it, once cheap checks say W+1 messages can
// be in it (below); the inner messages (their CRCs, magic, no nested
// compression, the size limit) are checked by the writer's Decode, which
// dead-letters an entry that fails, exactly as for a v2 batch. Where the
// count is wrong — a producer writing absolute offsets, or inner offsets
// that are not 0..n-1 — the writer still delivers every inner message (it
// delivers and commits whole entries; a record's offset delta is only its
// index, for dead-lettering single records SLS refuses), and only the
// offsets the producer was told are off, which nothing reads: the relay
// serves no Fetch. Magic 0 is always decompressed: its inner offsets are
// absolute and its wrapper offset has no agreed meaning for a producer.
//
// Kafka's broker decompresses every wrapper to validate it (LogValidator);
// this is where the relay differs, on purpose, as it does for v2.

// minMessageV1 is the smallest magic 1 message with its offset and size
// fields: 12 + crc 4, magic 1, attributes 1, timestamp 8, key and value
// lengths 4 + 4.
const minMessageV1 = logOverhead + legacyOverheadV1

// gzipMinLen is the smallest gzip member (RFC 1952): ID1 ID2 CM (8:
// deflate), FLG, MTIME, XFL, OS, then the deflate data and a trailer of
// CRC32 and ISIZE (the uncompressed size mod 2^32, little endian).
const gzipMinLen = 18

// wrapperCount returns how many records a magic 1 compressed wrapper found
// at offset field offset holds by its offset, and the decompressed bytes to
// charge to the budget, or ok false when the wrapper must be decompressed to
// be counted: magic 0, offset 0 or negative, a count that cannot fit the
// budget, or a stream whose framing says it is too small for that many
// messages (or larger than the budget). Falling back is never a refusal:
// decompressing decides.
func wrapperCount(offset int64, wrapper *legacyMessage, budget int) (records int64, charge int, ok bool) {
	// offset is checked before adding 1: math.MaxInt64+1 wraps to a
	// negative count that would pass the checks below.
	if wrapper.magic != 1 || offset <= 0 || offset >= maxRecordsPerSet {
		return 0, 0, false
	}
	records = offset + 1
	minBytes := records * minMessageV1
	if minBytes > int64(budget) {
		return 0, 0, false
	}
	size, known, ok := declaredSize(wrapper.codec(), wrapper.value)
	switch {
	case !ok:
		return 0, 0, false
	case !known:
		return records, int(minBytes), true
	case size < minBytes || size > int64(budget):
		return 0, 0, false
	}
	return records, int(size), true
}

// declaredSize is the decompressed size the framing of a compressed value
// declares, where it declares one without decompressing (known): gzip's
// ISIZE, the lengths snappy blocks start with. ok is false for a value
// whose framing is wrong already. An lz4 frame declares none (Kafka's
// producers do not set its content size).
func declaredSize(codec int8, v []byte) (size int64, known, ok bool) {
	switch codec {
	case CodecGzip:
		if len(v) < gzipMinLen || v[0] != 0x1f || v[1] != 0x8b || v[2] != 8 {
			return 0, false, false
		}
		// ISIZE is that of the last member only; several members (which
		// no Kafka producer writes) fall back when it looks too small.
		return int64(binary.LittleEndian.Uint32(v[len(v)-4:])), true, true
	case CodecSnappy:
		if len(v) < xerialHeaderLen || !bytes.Equal(v[:len(xerialMagic)], xerialMagic) {
			n, err := snappy.DecodedLen(v)
			return int64(n), true, err == nil
		}
		for b := v[xerialHeaderLen:]; len(b) > 0; {
			if len(b) < 4 || uint64(be32(b)) > uint64(len(b)-4) {
				return 0, false, false
			}
			n, err := snappy.DecodedLen(b[4 : 4+be32(b)])
			if err != nil {
				return 0, false, false
			}
			size += int64(n)
			b = b[4+be32(b):]
		}
		return size, true, true
	}
	return 0, false, true
}

// maxRecordsPerSet keeps a count taken from a wrapper's offset, summed over
// the set, well inside Info.Records (int32).
const maxRecordsPerSet = 1 << 28
