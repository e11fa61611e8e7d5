package engine

import "time"

// Producer IDs are unique across the nodes of a fleet and across restarts
// of one node. An idempotent producer that moves to another node (its node
// died or drained) keeps its ID; a new producer on that node must never
// get the same ID, or the node would take its first batches for retries of
// the other's. Layout of the int64 (non-negative, as Kafka wants):
//
//	bit  63     0
//	bits 62–53  NodeID (10 bits: 0 to MaxNodeID)
//	bits 52–0   a counter that starts, when the node starts, at the
//	            milliseconds since producerIDEpoch times 2^12
//
// The counter is never behind the clock's start value of a later run as
// long as a run hands out fewer than 4096 IDs per millisecond of uptime on
// average (producers ask once per connection or epoch bump, not per
// batch), so a restarted node does not reuse its previous run's IDs,
// whose batches it remembers from the WAL (RememberStored). 2^41 ms after
// the epoch (year 2094) the counter would reach the node bits.
const (
	producerIDNodeShift   = 53
	producerIDCounterBits = producerIDNodeShift
	producerIDPerMilli    = 1 << 12
	// MaxNodeID is the largest NodeID the producer ID layout holds.
	MaxNodeID = 1<<(63-producerIDNodeShift) - 1
)

// producerIDEpoch is where the counter's clock starts.
var producerIDEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// producerIDBase is the first producer ID a node started at now hands out
// (the server adds 1 before handing out each).
func producerIDBase(node int32, now time.Time) int64 {
	ms := max(0, now.Sub(producerIDEpoch).Milliseconds())
	counter := (ms * producerIDPerMilli) & (1<<producerIDCounterBits - 1)
	return int64(node)<<producerIDNodeShift | counter
}

// producerIDNode is the NodeID a producer ID was handed out by.
func producerIDNode(id int64) int32 { return int32(id >> producerIDNodeShift) }
