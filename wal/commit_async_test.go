package wal

import (
	"testing"
	"time"
)

// CommitAsync after every entry: reading goes on from the cursor, Commit
// of the last queued position makes it durable, a position queued just
// before Close is there after a restart, and a position that is no entry's
// end is refused.
func TestCommitAsync(t *testing.T) {
	dir, o, k := mkdir(t), testOptions(t), sk(1)
	w, r := tenEntries(t, dir, o, k)
	es := readAll(t, r)
	if len(es) != 10 {
		t.Fatalf("read %d entries, want 10", len(es))
	}
	for _, e := range es[:5] {
		if err := r.CommitAsync(e.BaseOffset + int64(e.Records)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.CommitAsync(3); err == nil {
		t.Fatal("CommitAsync of a non-boundary succeeded")
	}
	// The last queued position, again: a no-op, then made durable.
	if err := r.CommitAsync(10); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(10); err != nil {
		t.Fatal(err)
	}
	if got := r.Committed(); got != 10 {
		t.Fatalf("committed %d after Commit(10), want 10", got)
	}
	if err := r.CommitAsync(14); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Committed() != 14 {
		if time.Now().After(deadline) {
			t.Fatalf("committed %d long after CommitAsync(14)", r.Committed())
		}
		time.Sleep(time.Millisecond)
	}
	if err := r.CommitAsync(16); err != nil {
		t.Fatal(err)
	}
	r = reopenAt(t, w, dir, o, k, 16)
	if es := readAll(t, r); len(es) != 2 || es[0].BaseOffset != 16 {
		t.Fatalf("after restart read %d entries from %d, want 2 from 16", len(es), es[0].BaseOffset)
	}
}

// tenEntries opens a WAL in dir with 10 entries of 2 records in stream k,
// and k's reader.
func tenEntries(t *testing.T, dir string, o Options, k StreamKey) (*WAL, *Reader) {
	t.Helper()
	w := openTest(t, dir, o)
	for i := range 10 {
		mustAppend(t, w, k, testEntry(uint64(i), 200, 2), true)
	}
	waitIndexed(t, w)
	r, err := w.Reader(k)
	if err != nil {
		t.Fatal(err)
	}
	return w, r
}

// reopenAt closes w, opens it again (closed at the test's end) and checks
// that k's reader starts at committed.
func reopenAt(t *testing.T, w *WAL, dir string, o Options, k StreamKey, committed int64) *Reader {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openTest(t, dir, o)
	t.Cleanup(func() { w.Close() })
	r, err := w.Reader(k)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Committed(); got != committed {
		t.Fatalf("committed after restart %d, want %d", got, committed)
	}
	return r
}
