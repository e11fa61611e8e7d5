package engine

import (
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// userMetrics are one relay user's counters. Failures under names that are
// not users are counted under user="(unknown)", so made-up names cannot
// grow the metrics.
type userMetrics struct {
	logins, failures, bytesIn *metrics.Counter
}

var userCounters sync.Map // user name -> *userMetrics

func userMetricsFor(user string) *userMetrics {
	if v, ok := userCounters.Load(user); ok {
		return v.(*userMetrics)
	}
	l := fmt.Sprintf(`{user=%q}`, user)
	v, _ := userCounters.LoadOrStore(user, &userMetrics{
		logins:   metrics.GetOrCreateCounter(`slsrelay_user_logins_total` + l),
		failures: metrics.GetOrCreateCounter(`slsrelay_user_login_failures_total` + l),
		bytesIn:  metrics.GetOrCreateCounter(`slsrelay_user_bytes_in_total` + l),
	})
	return v.(*userMetrics)
}

// unknownUser labels failures of names that are not relay users (and of
// AccessKey logins).
const unknownUser = "(unknown)"

func userFailureCounter(user string, known bool) *metrics.Counter {
	if !known {
		user = unknownUser
	}
	return userMetricsFor(user).failures
}

// countUserIn counts the batch bytes a relay user's connection stored; ""
// (an AccessKey login) is not counted.
func countUserIn(user string, bytes int) {
	if user != "" {
		userMetricsFor(user).bytesIn.Add(bytes)
	}
}

// logLimiter lets through at most limit lines per window and counts the
// rest. Safe for concurrent use.
type logLimiter struct {
	limit  int
	window time.Duration

	mu         sync.Mutex // protects the fields below
	start      time.Time
	n          int
	suppressed int
}

// allow reports whether a line may be logged now and how many were
// suppressed since the last one that was.
func (l *logLimiter) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.start) >= l.window {
		l.start, l.n = now, 0
	}
	if l.n >= l.limit {
		l.suppressed++
		return false, 0
	}
	l.n++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}
