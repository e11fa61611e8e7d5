package shardwriter

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// The writers' metrics, in the process-wide set of
// github.com/VictoriaMetrics/metrics that the admin listener exposes.
var (
	slsRequestDuration = metrics.GetOrCreatePrometheusHistogram(`slsrelay_sls_request_duration_seconds`)
	slsRequestsOK      = metrics.GetOrCreateCounter(`slsrelay_sls_requests_total{result="ok"}`)
	slsRequestsRetried = metrics.GetOrCreateCounter(`slsrelay_sls_requests_total{result="retry"}`)
	slsRequestsDead    = metrics.GetOrCreateCounter(`slsrelay_sls_requests_total{result="dead_letter"}`)
	slsRequestsSplit   = metrics.GetOrCreateCounter(`slsrelay_sls_requests_total{result="split"}`)
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

// writersFailing is how many writers are in a run of retried failures
// (slsrelay_sls_writers_failing): above 0 for minutes, SLS is out of
// reach, refusing the key for now, or over quota.
var writersFailing atomic.Int64

var _ = metrics.GetOrCreateGauge(`slsrelay_sls_writers_failing`, func() float64 { return float64(writersFailing.Load()) })

var slsErrors sync.Map // errorKey -> *metrics.Counter

type errorKey struct {
	code  string
	alert bool
}

// countSLSError counts a failed write by SLS error code ("network" for a
// transport failure) and verdict in slsrelay_sls_errors_total, and, when
// its rule says so, in slsrelay_sls_alert_errors_total, the counter to
// alert on (a state someone must fix or watch: see classify.go).
func countSLSError(code string, r errorRule) {
	k := errorKey{code + "\x00" + verdictNames[r.verdict], false}
	v, ok := slsErrors.Load(k)
	if !ok {
		v, _ = slsErrors.LoadOrStore(k, metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_sls_errors_total{code=%q,verdict=%q}`, code, verdictNames[r.verdict])))
	}
	v.(*metrics.Counter).Inc()
	if !r.alert {
		return
	}
	k = errorKey{code, true}
	if v, ok = slsErrors.Load(k); !ok {
		v, _ = slsErrors.LoadOrStore(k, metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_sls_alert_errors_total{code=%q}`, code)))
	}
	v.(*metrics.Counter).Inc()
}
