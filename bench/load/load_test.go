package load

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if !math.IsNaN(h.Quantile(0.5)) {
		t.Fatal("empty histogram should give NaN")
	}
	// 1 … 10000 µs, each once.
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 5}, {0.99, 9.9}, {0.999, 9.99}, {1, 10}} {
		got := h.Quantile(c.q)
		if got < c.want || got > c.want*1.02 { // upper bucket edge: never below, ≤ 1/64 above
			t.Errorf("q%.3f = %.4f ms, want %.4f (+2%%)", c.q, got, c.want)
		}
	}
	if h.Count() != 10000 {
		t.Fatalf("count %d", h.Count())
	}
}

func TestHistogramAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	var h Histogram
	var vals []float64
	for range 50000 {
		us := math.Exp(r.NormFloat64()*2 + 7) // 10 µs … seconds
		d := time.Duration(us) * time.Microsecond
		h.Record(d)
		vals = append(vals, float64(d.Microseconds())/1000)
	}
	sort.Float64s(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.Quantile(q)
		if got < exact || got > exact*1.02+0.001 {
			t.Errorf("q%v = %v, exact %v", q, got, exact)
		}
	}
}

func TestHistogramIntervalAndConcurrency(t *testing.T) {
	var h Histogram
	for range 1000 {
		h.Record(time.Second)
	}
	before := h.Snapshot()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				h.Record(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	d := h.Snapshot().Sub(before)
	if d.Total != 4000 {
		t.Fatalf("interval total %d", d.Total)
	}
	if p := d.Quantile(0.999); p < 1 || p > 1.02 {
		t.Fatalf("interval p99.9 = %v ms, want ~1 (the earlier 1 s values are not in it)", p)
	}
}

func TestBucketEdges(t *testing.T) {
	for v := uint64(0); v < 1<<20; v += 7 {
		i := bucketOf(v)
		if bucketValue(i) < v || (i > 0 && bucketValue(i-1) >= v) {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, i, bucketValue(i-1), bucketValue(i))
		}
	}
	if bucketOf(math.MaxUint64) >= histBuckets {
		t.Fatal("max value out of range")
	}
}

func TestIDSet(t *testing.T) {
	var s IDSet
	ids := []uint64{1, 2, 63, 64, 65, 1 << 20, 1<<20 + 1, 5 << 20}
	for _, id := range ids {
		if !s.Set(id) {
			t.Fatalf("%d not new", id)
		}
	}
	if s.Set(64) {
		t.Fatal("64 set twice")
	}
	if s.Len() != int64(len(ids)) || s.Max() != 5<<20 || s.Has(3) || !s.Has(65) {
		t.Fatalf("len %d max %d", s.Len(), s.Max())
	}
	var got []uint64
	s.Range(func(id uint64) { got = append(got, id) })
	if len(got) != len(ids) {
		t.Fatalf("range %v", got)
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("range %v, want %v", got, ids)
		}
	}
}

func TestValueRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	now := time.Now().Truncate(time.Microsecond)
	for _, size := range []int{10, 64, 500, 5000} {
		v := Value(nil, 123456789, now, size, r)
		if size >= 64 && (len(v) < size-2 || len(v) > size+2) {
			t.Errorf("size %d: got %d bytes", size, len(v))
		}
		id, ts, ok := ParseValue(v)
		if !ok || id != 123456789 || !ts.Equal(now) {
			t.Fatalf("parse %q: %d %v %v", v[:40], id, ts, ok)
		}
	}
	if _, _, ok := ParseValue([]byte("hello")); ok {
		t.Fatal("parsed a foreign value")
	}
}

func TestPaceBurst(t *testing.T) {
	p := Pace{Rate: 100, Factor: 5, On: 2 * time.Second, Off: 8 * time.Second}
	if p.RateAt(time.Second) != 500 || p.RateAt(3*time.Second) != 100 || p.RateAt(11*time.Second) != 500 {
		t.Fatal("burst schedule wrong")
	}
}
