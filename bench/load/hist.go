// Package load is the bench's load generator: a fleet of Kafka producers
// (franz-go clients, or raw Produce requests over many sockets) whose every
// record carries a unique id and its send time, plus the counters and the
// latency histogram the harness samples.
package load

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram is a lock-free log-linear histogram of durations in
// microseconds: each power of two is split into 2^subBits buckets, so a
// reported percentile is within 1/2^subBits (≈1.6 %) of the true value.
// Record is safe for concurrent use.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Uint64
}

const (
	subBits     = 6
	subCount    = 1 << subBits
	histBuckets = (64 - subBits + 1) * subCount
)

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	exp := bits.Len64(v) - subBits - 1 // ≥ 0
	return (exp+1)*subCount + int(v>>uint(exp)) - subCount
}

// bucketValue is the upper edge of bucket i (the largest value it holds).
func bucketValue(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	exp := i/subCount - 1
	sub := uint64(i%subCount + subCount)
	return (sub+1)<<uint(exp) - 1
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	v := uint64(us)
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Snapshot is a copy of a Histogram's counts; snapshots subtract, so a
// sampler can take percentiles of one interval.
type Snapshot struct {
	Counts []uint64
	Total  uint64
	Max    uint64 // of the whole histogram, not of an interval
}

// Snapshot copies the counts.
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{Counts: make([]uint64, histBuckets)}
	for i := range s.Counts {
		s.Counts[i] = h.counts[i].Load()
		s.Total += s.Counts[i]
	}
	s.Max = h.max.Load()
	return s
}

// Sub returns s minus an earlier snapshot of the same histogram.
func (s Snapshot) Sub(prev Snapshot) Snapshot {
	if prev.Counts == nil {
		return s
	}
	d := Snapshot{Counts: make([]uint64, len(s.Counts)), Max: s.Max}
	for i := range s.Counts {
		d.Counts[i] = s.Counts[i] - prev.Counts[i]
		d.Total += d.Counts[i]
	}
	return d
}

// Quantile returns the q-quantile (0 < q ≤ 1) in milliseconds, NaN when
// empty. It reports the upper edge of the bucket holding the rank, so it
// never understates.
func (s Snapshot) Quantile(q float64) float64 {
	if s.Total == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(s.Total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range s.Counts {
		seen += c
		if seen >= rank {
			return float64(bucketValue(i)) / 1000
		}
	}
	return float64(s.Max) / 1000
}

// Quantile is Snapshot().Quantile(q).
func (h *Histogram) Quantile(q float64) float64 { return h.Snapshot().Quantile(q) }

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total.Load() }
