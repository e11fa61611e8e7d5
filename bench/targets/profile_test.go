package targets

import (
	"os"
	"runtime/metrics"
	"testing"
)

// The child's profile and trace are written, and not without a prefix.
func TestProfileChild(t *testing.T) {
	stop, err := profileChild("")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	prefix := t.TempDir() + "/relay"
	if stop, err = profileChild(prefix); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1e6; i++ {
		_ = make([]byte, 64) // something to trace
	}
	stop()
	for _, ext := range []string{".cpu", ".trace"} {
		if fi, err := os.Stat(prefix + ext); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v, want a non-empty file", prefix+ext, err)
		}
	}
}

func TestHistQuantiles(t *testing.T) {
	f := func(counts []uint64, want string) {
		t.Helper()
		h := &metrics.Float64Histogram{Counts: counts, Buckets: []float64{0, 0.001, 0.01, 0.1, 1}}
		if got := histQuantiles(h); got != want {
			t.Errorf("counts %v: %q, want %q", counts, got, want)
		}
	}
	f([]uint64{0, 0, 0, 0}, "n=0")
	f([]uint64{100, 0, 0, 0}, "n=100 p50≤1ms p99≤1ms p99.9≤1ms p99.99≤1ms")
	f([]uint64{98, 1, 1, 0}, "n=100 p50≤1ms p99≤100ms p99.9≤100ms p99.99≤100ms")
	f([]uint64{9000, 900, 90, 10}, "n=10000 p50≤1ms p99≤100ms p99.9≤1e+03ms p99.99≤1e+03ms")
}
