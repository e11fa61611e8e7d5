package shardwriter

import (
	"context"
	"testing"
	"time"
)

// The pacer holds a writer to its rates: after the first second's burst,
// requests are spaced by the slower of the two limits.
func TestPacerHoldsRates(t *testing.T) {
	f := func(name string, bytesPerSec, reqPerSec, size, n int, minElapsed time.Duration) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			p := newPacer(bytesPerSec, reqPerSec, false)
			start := time.Now()
			for i := 0; i < n; i++ {
				if !p.wait(context.Background(), size) {
					t.Fatal("wait failed")
				}
			}
			if el := time.Since(start); el < minElapsed {
				t.Fatalf("%d requests of %d bytes took %v, want at least %v", n, size, el, minElapsed)
			}
		})
	}
	// 100 requests/s: a burst of 100, then 50 more take ≥ 0.5 s.
	f("request rate", 0, 100, 10, 150, 450*time.Millisecond)
	// 1 MB/s in 100 kB requests: 10 free, 5 more take ≥ 0.5 s.
	f("byte rate", 1_000_000, 0, 100_000, 16, 450*time.Millisecond)

	p := newPacer(1, 0, false)
	p.wait(context.Background(), 10) // deep in debt now
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if p.wait(ctx, 1) {
		t.Fatal("wait returned true after its context ended")
	}
}
