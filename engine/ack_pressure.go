package engine

import "sync/atomic"

// producePending counts the Produce requests this process has decoded and
// not yet answered (stored and synced as their acks ask, or refused). It
// is what the writers look at to leave the CPU to acknowledgements while
// there are some to give (shardwriter.Options.AckPressure). Process-wide:
// every Server of the process adds to it, as they share the CPUs.
var producePending atomic.Int64

// ProducePending returns how many Produce requests the process has decoded
// and not yet answered. Safe for concurrent use.
func ProducePending() int64 { return producePending.Load() }
