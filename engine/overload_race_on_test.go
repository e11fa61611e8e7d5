//go:build race

package engine

import "time"

// Under the race detector everything is several times slower: the huge
// frames are smaller (8 × 100 MiB took over 30 s, past the default
// PartialFrameTimeout) and the well-behaved client is allowed more
// latency. 10,000 idle connections take about 3 s even so.
const (
	overloadIdleConns   = 10_000
	overloadProducers   = 1_000
	overloadBudgetConns = 16
	overloadHugeConns   = 8
	overloadHugeFrame   = 24 * mib
	overloadHugeP99     = 5 * time.Second
	overloadProbeP99    = time.Second
	overloadDeadlockFor = 3 * time.Second
)
