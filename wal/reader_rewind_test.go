package wal

import (
	"context"
	"testing"
	"time"
	"unsafe"
)

// TestReuseDataRewind: with ReuseData, the entries returned before a
// Rewind keep their Data (Rewind lends their buffers to no one), the
// entries read again after it get buffers of their own, and each buffer
// goes back once: reading and committing the rest of the stream, with
// buffers reused, leaves every entry held intact.
func TestReuseDataRewind(t *testing.T) {
	const n = 40
	_, r := reuseReader(t, n, func(int) int { return 64 << 10 })
	check := func(es []*Entry, when string) { t.Helper(); checkHeld(t, es, when) }
	buffer := func(e *Entry) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(e.Data)) }

	before := readN(t, r, 5)
	r.Rewind()
	again := readN(t, r, 5)
	if len(again) != len(before) || again[0].BaseOffset != before[0].BaseOffset {
		t.Fatalf("after Rewind read %d entries from %d, want %d from %d", len(again), again[0].BaseOffset, len(before), before[0].BaseOffset)
	}
	held := map[unsafe.Pointer]bool{}
	for _, e := range before {
		held[buffer(e)] = true
	}
	for _, e := range again {
		if held[buffer(e)] {
			t.Fatalf("entry at %d read again into the buffer of the entry returned before Rewind", e.BaseOffset)
		}
	}
	check(append(before, again...), "after Rewind")

	last := again[len(again)-1]
	if err := r.CommitAsync(last.BaseOffset + int64(last.Records)); err != nil {
		t.Fatal(err)
	}
	for read := 0; read < n-len(again); {
		es := readN(t, r, 3)
		read += len(es)
		check(es, "before commit")
		check(before, "entries held across Rewind")
		last := es[len(es)-1]
		if err := r.CommitAsync(last.BaseOffset + int64(last.Records)); err != nil {
			t.Fatal(err)
		}
	}
	check(before, "at the end")
}

// readN reads up to max entries from r, failing the test on an error.
func readN(t *testing.T, r *Reader, max int) []*Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	es, err := r.Read(ctx, 1<<30, max)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// checkHeld fails the test unless every entry of es, written by testEntry
// with 3 records, still holds its own payload.
func checkHeld(t *testing.T, es []*Entry, when string) {
	t.Helper()
	for _, e := range es {
		id, err := checkPayload(e.Data)
		if err != nil || int64(id)*3 != e.BaseOffset {
			t.Fatalf("%s: entry at %d holds payload %d (%v)", when, e.BaseOffset, id, err)
		}
	}
}

// reuseReader opens a WAL holding n entries of stream sk(1) (testEntry i
// of size(i) bytes and 3 records) and the stream's Reader with ReuseData;
// both close when the test ends.
func reuseReader(t *testing.T, n int, size func(i int) int) (*WAL, *Reader) {
	t.Helper()
	w := openTest(t, mkdir(t), testOptions(t))
	t.Cleanup(func() { w.Close() })
	k := sk(1)
	for i := range n {
		mustAppend(t, w, k, testEntry(uint64(i), size(i), 3), false)
	}
	r, err := w.Reader(k)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	r.ReuseData()
	return w, r
}
