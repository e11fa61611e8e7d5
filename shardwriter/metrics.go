package shardwriter

import (
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// The writers' metrics, in the process-wide set of
// github.com/VictoriaMetrics/metrics that the admin listener exposes.
var (
	slsRequestDuration = metrics.GetOrCreatePrometheusHistogram(`slsrelay_sls_request_duration_seconds`)
	slsRequestsOK      = metrics.GetOrCreateCounter(`slsrelay_sls_requests_total{result="ok"}`)
	slsRequestsRetried = metrics.GetOrCreateCounter(`slsrelay_sls_requests_total{result="retry"}`)
	slsRequestsDead    = metrics.GetOrCreateCounter(`slsrelay_sls_requests_total{result="dead_letter"}`)
	logsOut            = metrics.GetOrCreateCounter(`slsrelay_logs_delivered_total`)
	rawBytesOut        = metrics.GetOrCreateCounter(`slsrelay_raw_bytes_delivered_total`)
	deadLetters        = metrics.GetOrCreateCounter(`slsrelay_dead_letters_total`)
)

var slsErrors sync.Map // code -> *metrics.Counter

// countSLSError counts a failed write by SLS error code ("network" for a
// transport failure).
func countSLSError(code string) {
	v, ok := slsErrors.Load(code)
	if !ok {
		v, _ = slsErrors.LoadOrStore(code, metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_sls_errors_total{code=%q}`, code)))
	}
	v.(*metrics.Counter).Inc()
}
