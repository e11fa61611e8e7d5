package wal

import (
	"context"
	"testing"
	"time"
	"unsafe"
)

// TestReuseData reads a stream with ReuseData, holding every entry until it
// commits past it: no entry's Data may change before its commit, every
// entry must read back intact after the buffers of committed ones are
// reused, and (without the race detector, whose sync.Pool drops buffers at
// random) buffers must actually be reused.
func TestReuseData(t *testing.T) {
	const n = 60
	sizes := []int{300 << 10, 40 << 10, 700 << 10, 5 << 10, 300 << 10}
	w, r := reuseReader(t, n, func(i int) int { return sizes[i%len(sizes)] })
	k := r.Key()

	check := func(held []*Entry, when string) { t.Helper(); checkHeld(t, held, when) }
	var held []*Entry
	buffers := map[uintptr]bool{}
	read := 0
	for reads := 0; read < n; reads++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		es, err := r.Read(ctx, 1<<20, 3)
		cancel()
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		for _, e := range es {
			buffers[uintptr(unsafe.Pointer(unsafe.SliceData(e.Data)))] = true
		}
		read += len(es)
		held = append(held, es...)
		check(held, "before commit")
		if reads%2 == 1 {
			// Commit all but the last entry held: its buffer stays
			// lent, the others go back.
			last := held[len(held)-2]
			if err := r.CommitAsync(last.BaseOffset + int64(last.Records)); err != nil {
				t.Fatal(err)
			}
			held = held[len(held)-1:]
		}
	}
	check(held, "at the end")
	if !raceEnabled && len(buffers) > n/2 {
		t.Errorf("%d entries read into %d buffers: not reused", n, len(buffers))
	}
	t.Logf("%d entries read into %d buffers", n, len(buffers))

	// Without ReuseData every entry has a buffer of its own.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := w.Reader(k)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	mustAppend(t, w, k, testEntry(n, 1000, 3), false)
	mustAppend(t, w, k, testEntry(n+1, 1000, 3), false)
	es := readAll(t, r2)
	if len(es) == 0 {
		t.Fatal("nothing read")
	}
	for _, e := range es {
		if _, err := checkPayload(e.Data); err != nil {
			t.Fatal(err)
		}
	}
}
