package wal

import (
	"testing"
	"time"
)

// TestSyncPolicies checks when fsyncs happen: once per group under batch,
// at most every SyncInterval under interval, where acks=1 appends do not
// wait for them and acks=-1 appends do.
func TestSyncPolicies(t *testing.T) {
	t.Run("batch", func(t *testing.T) {
		w := openTest(t, mkdir(t), testOptions(t))
		defer w.Close()
		before := w.Stats().Syncs
		for i := range 20 {
			mustAppend(t, w, sk(0), testEntry(uint64(i), 1000, 1), false)
		}
		if n := w.Stats().Syncs - before; n < 20 {
			t.Fatalf("20 sequential acks=1 appends under batch made %d fsyncs, want one each", n)
		}
	})
	t.Run("interval", func(t *testing.T) {
		o := testOptions(t)
		o.Sync = SyncInterval
		o.SyncInterval = time.Second
		w := openTest(t, mkdir(t), o)
		defer w.Close()
		mustAppend(t, w, sk(0), testEntry(0, 1000, 1), true) // first fsync
		before := w.Stats().Syncs
		start := time.Now()
		for i := range 50 {
			mustAppend(t, w, sk(0), testEntry(uint64(i), 1000, 1), false)
		}
		took := time.Since(start)
		if n := w.Stats().Syncs - before; n > 1 || took > 900*time.Millisecond {
			t.Fatalf("50 acks=1 appends under interval took %v and %d fsyncs", took, n)
		}
		// An acks=-1 append waits for the next fsync (due within 1s).
		start = time.Now()
		mustAppend(t, w, sk(0), testEntry(99, 1000, 1), true)
		if n := w.Stats().Syncs - before; n < 1 {
			t.Fatalf("acks=-1 append acknowledged without an fsync")
		}
		t.Logf("acks=1: 50 appends in %v; acks=-1 waited %v for its fsync", took, time.Since(start))
		// Readers see data once synced.
		r, _ := w.Reader(sk(0))
		if es := readAll(t, r); len(es) != 52 {
			t.Fatalf("reader saw %d entries", len(es))
		}
	})
}
