//go:build !race

package engine

import "time"

// Sizes and bounds of the overload tests; see overload_race_on_test.go.
const (
	overloadIdleConns = 10_000 // TestOverloadIdleConnections
	overloadProducers = 1_000  // of which produce
	// TestOverloadBudget's producing connections.
	overloadBudgetConns = 16
	// TestOverloadHugeFrames: connections, frame size, and the bound on
	// the well-behaved client's ack p99 meanwhile.
	overloadHugeConns = 8
	overloadHugeFrame = 100 * mib
	overloadHugeP99   = 2 * time.Second
	// The bound on the well-behaved client's ack p99 during the other
	// attacks (and on single round trips beside one).
	overloadProbeP99 = 250 * time.Millisecond
	// How long TestOverloadBudgetWakeDeadlock hammers the budget.
	overloadDeadlockFor = 3 * time.Second
)
