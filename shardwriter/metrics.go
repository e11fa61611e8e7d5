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

// logFixes counts the changes made to logs so that SLS takes them, by
// kind (sanitize.go, sendtime.go).
var logFixes = func() (cs [svKinds]*metrics.Counter) {
	for k := range cs {
		cs[k] = metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_log_fixes_total{kind=%q}`, svKindNames[k]))
	}
	return cs
}()

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
