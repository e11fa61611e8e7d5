package engine

import "github.com/slsrelay/slsrelay/wal"

// Appender stores validated batches: the WAL in production, an in-memory
// store in tests.
//
// Append must be safe for concurrent use and must not block on disk: it
// queues the entry and returns. Appends made one after the other from the
// same goroutine to the same stream get increasing offsets in that order.
// done is called exactly once, from any goroutine, with the base offset the
// stream assigned or an error. With durable=false done may be called once the
// entry is written (acks=1); with durable=true only once it is synced to disk
// (acks=-1). The entry's Data is the appender's to read until it calls
// done, and no longer: the engine reuses the request's buffer once the
// response is sent (framepool.go), so an appender that keeps Data past
// done keeps a copy.
type Appender interface {
	Append(k wal.StreamKey, e *wal.Entry, durable bool, done func(baseOffset int64, err error))
}
