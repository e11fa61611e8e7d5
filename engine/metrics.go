package engine

import (
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal"
)

// The engine's metrics live in the process-wide set of
// github.com/VictoriaMetrics/metrics, exposed by the admin listener's
// /metrics. Counters are created on first use and shared by every Server
// of the process (tests run several: compare deltas).
var (
	produceDuration = metrics.GetOrCreatePrometheusHistogramExt(`slsrelay_produce_duration_seconds`, wal.DurationBuckets)
	throttleSeconds = metrics.GetOrCreateFloatCounter(`slsrelay_throttle_seconds_total`)
	throttledResps  = metrics.GetOrCreateCounter(`slsrelay_throttled_responses_total`)
	// duplicateBatches counts idempotent producers' retries answered
	// without storing them again.
	duplicateBatches = metrics.GetOrCreateCounter(`slsrelay_duplicate_batches_total`)
	// provenWrites counts batches delivered before their answer, to
	// prove their AccessKey may write the Logstore (Catalog.ProveWrite).
	provenWrites = metrics.GetOrCreateCounter(`slsrelay_write_proof_batches_total`)
)

// listenerMetrics are one listener's counters, looked up once rather than
// per connection.
type listenerMetrics struct {
	open, total, saslFailures *metrics.Counter
}

func newListenerMetrics(listener string) listenerMetrics {
	return listenerMetrics{
		open:         metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_connections{listener=%q}`, listener)),
		total:        metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_connections_total{listener=%q}`, listener)),
		saslFailures: metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_sasl_failures_total{listener=%q}`, listener)),
	}
}

// apiCounters caches the per-API-key counters: building a metric name per
// request would cost more than counting.
var apiCounters sync.Map // int16 -> *[2]*metrics.Counter (requests, bytes)

func countRequest(key int16, bytes int) {
	v, ok := apiCounters.Load(key)
	if !ok {
		name := kmsg.NameForKey(key)
		if name == "" {
			name = fmt.Sprint(key)
		}
		v, _ = apiCounters.LoadOrStore(key, &[2]*metrics.Counter{
			metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_requests_total{api=%q}`, name)),
			metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_request_bytes_total{api=%q}`, name)),
		})
	}
	c := v.(*[2]*metrics.Counter)
	c[0].Inc()
	c[1].Add(bytes)
}

type topicKey struct{ project, logstore string }

var topicCounters sync.Map // topicKey -> *[2]*metrics.Counter (records, bytes)

// countIn counts what a topic (Logstore) accepted.
func countIn(k wal.StreamKey, records int32, bytes int) {
	tk := topicKey{k.Project, k.Logstore}
	v, ok := topicCounters.Load(tk)
	if !ok {
		labels := fmt.Sprintf(`{project=%q,logstore=%q}`, k.Project, k.Logstore)
		v, _ = topicCounters.LoadOrStore(tk, &[2]*metrics.Counter{
			metrics.GetOrCreateCounter(`slsrelay_records_in_total` + labels),
			metrics.GetOrCreateCounter(`slsrelay_bytes_in_total` + labels),
		})
	}
	c := v.(*[2]*metrics.Counter)
	c[0].Add(int(records))
	c[1].Add(bytes)
}

var errorCounters sync.Map // int16 -> *metrics.Counter

// countPartitionError counts a Produce partition answered with an error.
func countPartitionError(code int16) {
	v, ok := errorCounters.Load(code)
	if !ok {
		name := fmt.Sprint(code)
		if e := kerr.ErrorForCode(code); e != nil {
			if ke, ok := e.(*kerr.Error); ok {
				name = ke.Message
			}
		}
		v, _ = errorCounters.LoadOrStore(code, metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_produce_errors_total{error=%q}`, name)))
	}
	v.(*metrics.Counter).Inc()
}

func observeThrottle(d time.Duration) {
	throttledResps.Inc()
	throttleSeconds.Add(d.Seconds())
}
