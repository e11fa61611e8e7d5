// Package batchtest builds real Kafka batch encodings for tests: RecordBatch
// v2 and MessageSet v0/v1, framed with kmsg's types, compressed with the real
// compressors (gzip, snappy raw and xerial-framed, lz4, zstd), with the
// lengths and CRCs that kmsg leaves to the caller filled in.
//
// The tests of wal/batch, shardwriter and engine feed these bytes to code
// that must accept what real producers send, so the fixtures are built with
// the same libraries producers use rather than with the code under test.
// The package imports nothing of this module, which lets wal/batch's own
// (internal) tests use it without an import cycle.
//
// Helpers that can fail take a testing.TB and stop the test with Fatal.
package batchtest
