// Package batch knows the Kafka record formats the relay stores in its WAL:
// the v2 RecordBatch (magic 2, Kafka 0.11 and later) and the v0/v1
// MessageSet (magic 0 and 1, Kafka 0.8 to 0.10), with every codec Kafka
// defines: gzip, snappy (raw blocks and xerial framing), lz4 (including the
// broken frame header checksum of Kafka before 0.10) and zstd.
//
// The relay keeps each Produce request's per-partition Records bytes exactly
// as the producer sent them, so the package serves two moments of a batch's
// life:
//
//   - Validate runs on the ack path, before the bytes are appended to the WAL.
//     It applies the checks Apache Kafka's broker applies to a produce
//     (framing, checksums, codec, record count, produce-version rules) and
//     reports failures as errors wrapping the kerr value the partition's
//     response must carry. It never decompresses a v2 batch: the batch CRC
//     covers the compressed bytes, and decompressing on the ack path would
//     cost more than the disk write. Nor a magic 1 wrapper whose offset
//     gives its record count, as KIP-31 producers (Java, franz-go) write it
//     (wrappercount.go); a wrapper at offset 0 (sarama, librdkafka) and
//     magic 0 wrappers are decompressed to be counted. What is not
//     decompressed is checked by the Decoder at delivery, where a corrupt
//     batch becomes a dead letter.
//   - Decoder runs at delivery: it turns a stored batch back into records
//     (keys, values, headers, timestamps) for the shard writer.
//
// Validate is safe for concurrent use. A Decoder keeps buffers and
// decompressors between calls and must not be used by two goroutines at once;
// use one per delivery goroutine.
package batch
