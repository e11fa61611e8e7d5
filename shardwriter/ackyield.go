package shardwriter

import (
	"context"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

var (
	ackYieldWaits   = metrics.GetOrCreateCounter(`slsrelay_writer_ack_yields_total`)
	ackYieldSeconds = metrics.GetOrCreateFloatCounter(`slsrelay_writer_ack_yield_seconds_total`)
)

// Delivery yields to acknowledgements: before each entry it converts, and
// before each PutLogs it compresses and sends, a writer waits while the
// process has Produce requests decoded and not yet answered
// (Options.AckPressure), so that their decoding, storing and answering
// find the CPUs free. Only briefly, and within a floor share: over any
// stretch, a writer's (or sender's) waits add up to at most
// (1-ackYieldFloor)/ackYieldFloor times its own work, so it keeps at least
// ackYieldFloor of the pace it would have never waiting (a sender's work
// includes its PutLogs round trip). A sustained load the writers can
// deliver at that share never grows a backlog without bound; one that
// needs more while acknowledgements are always pending grows one, which
// the throttle (engine.Throttler, on the WAL's backlog) bounds as any
// other. The trade is delivery latency during a burst, never data.

const (
	// ackYieldFloor is the least share of its unhindered pace a writer
	// keeps while acknowledgements are pending.
	ackYieldFloor = 0.5
	// ackYieldMax bounds one wait: a writer looks again after it even
	// with acknowledgements still pending (and within its floor share).
	ackYieldMax = 20 * time.Millisecond
	// ackYieldPoll is how often a waiting writer looks at the pressure.
	ackYieldPoll = time.Millisecond
	// ackYieldWindow: the sums of work and waits are halved whenever
	// their total passes it, so that the floor share holds over the
	// last seconds rather than since the start.
	ackYieldWindow = 2 * time.Second
)

// ackYield is one goroutine's yielding to acknowledgements; not safe for
// concurrent use. Its zero value with a nil pressure never waits.
type ackYield struct {
	pressure func() int64 // Options.AckPressure
	// worked and waited are the recent sums of the goroutine's work and
	// waits (halved past ackYieldWindow).
	worked, waited time.Duration
	started        time.Time // of the work under way
}

// wait waits while acknowledgements are pending, for at most ackYieldMax
// and within the floor share, then marks the start of a unit of work.
// It returns early if ctx ends.
func (y *ackYield) wait(ctx context.Context) {
	if y.pressure != nil && y.pressure() > 0 {
		allowed := time.Duration(float64(y.worked)*(1-ackYieldFloor)/ackYieldFloor) - y.waited
		if limit := min(allowed, ackYieldMax); limit > 0 {
			t0 := time.Now()
			for y.pressure() > 0 && time.Since(t0) < limit && ctx.Err() == nil {
				time.Sleep(ackYieldPoll)
			}
			d := time.Since(t0)
			y.waited += d
			ackYieldWaits.Inc()
			ackYieldSeconds.Add(d.Seconds())
		}
	}
	y.started = time.Now()
}

// done ends the unit of work wait started.
func (y *ackYield) done() {
	if y.started.IsZero() {
		return
	}
	y.worked += time.Since(y.started)
	y.started = time.Time{}
	if y.worked+y.waited > ackYieldWindow {
		y.worked, y.waited = y.worked/2, y.waited/2
	}
}
