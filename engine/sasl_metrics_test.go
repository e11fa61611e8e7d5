package engine

import (
	"testing"
	"time"
)

// TestLogLimiter: at most limit lines per window; the next line let
// through says how many were suppressed.
func TestLogLimiter(t *testing.T) {
	l := &logLimiter{limit: 3, window: 50 * time.Millisecond}
	f := func(wantOK bool, wantSuppressed int) {
		t.Helper()
		ok, s := l.allow()
		if ok != wantOK || s != wantSuppressed {
			t.Fatalf("allow() = %v, %d; want %v, %d", ok, s, wantOK, wantSuppressed)
		}
	}
	f(true, 0)
	f(true, 0)
	f(true, 0)
	f(false, 0)
	f(false, 0)
	time.Sleep(60 * time.Millisecond)
	f(true, 2)
	f(true, 0)
}
