package engine

import (
	"runtime"

	"github.com/slsrelay/slsrelay/wal/batch"
)

// A MessageSet (magic 0 or 1) is decompressed while it is validated when
// its wrapper cannot be counted by its offset (magic 0, or magic 1 at
// offset 0 as sarama and librdkafka write it): up to
// batch.DefaultMaxDecompressedBytes (64 MiB) of output for a frame of a
// few KiB, held outside the budget, which counts request bytes. Every
// connection validating one at once would multiply that by the connection
// count. Decompression is CPU work, so no more run at once than there
// are CPUs to run them: the memory it holds is bounded by GOMAXPROCS, and
// the others wait their turn on their own session goroutine (an event
// loop never waits here). v2 batches are never decompressed in Validate
// (only their CRC is computed): they do not wait.
var messageSetSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// magicAt is where both formats keep their magic byte (batch.Validate).
const magicAt = 16

// validate is batch.Validate, taking a slot for a MessageSet.
func validate(records []byte, o batch.ValidateOptions) (batch.Info, error) {
	if len(records) > magicAt && records[magicAt] < 2 {
		messageSetSlots <- struct{}{}
		defer func() { <-messageSetSlots }()
	}
	return batch.Validate(records, o)
}
