package wal

import "github.com/VictoriaMetrics/metrics"

// fsyncDuration is exposed by the admin listener's /metrics (process-wide
// set of github.com/VictoriaMetrics/metrics); the WAL's gauges (disk,
// backlog) are read from Stats at scrape time instead.
var fsyncDuration = metrics.GetOrCreatePrometheusHistogram(`slsrelay_wal_fsync_duration_seconds`)
