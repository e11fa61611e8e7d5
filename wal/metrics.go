package wal

import "github.com/VictoriaMetrics/metrics"

// fsyncDuration is exposed by the admin listener's /metrics (process-wide
// set of github.com/VictoriaMetrics/metrics); the WAL's gauges (disk,
// backlog) are read from Stats at scrape time instead.
var fsyncDuration = metrics.GetOrCreatePrometheusHistogramExt(`slsrelay_wal_fsync_duration_seconds`, DurationBuckets)

// DurationBuckets are the upper bounds, in seconds, of the relay's latency
// histograms (this fsync's, the engine's Produce): Prometheus's defaults
// with four more below 5 ms, where a group commit's fdatasync and most
// acknowledgements land, so that a p99 of 1 ms and one of 4 ms differ.
var DurationBuckets = []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
