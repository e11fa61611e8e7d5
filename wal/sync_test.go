package wal

import (
	"sync/atomic"
	"syscall"
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

// The indexer's periodic ask to sync badger's files waits for no append,
// so while Reclaim's DropPrefix holds badger (dbWriteMu; badger's own lock
// would make db.Sync wait for the whole drop) it is put off: appends are
// answered meanwhile, and the ask is carried out once the drop is over.
func TestIndexSyncPutOffDuringDrop(t *testing.T) {
	w := openAsked(t) // closed by its cleanup, after the drop's
	d := startDrop(t, w)
	if !d.appendAnswered(10, 10*time.Second) {
		t.Fatal("an append waited for badger's sync during a drop")
	}
	if !dbAsked(w) || d.syncs.Load() != 0 {
		t.Fatalf("during the drop: ask pending %v, badger synced %d times", dbAsked(w), d.syncs.Load())
	}
	d.end()
	mustAppend(t, w, sk(0), testEntry(11, 1<<10, 1), true)
	if d.syncs.Load() == 0 {
		t.Fatal("the ask put off during the drop was not carried out after it")
	}
}

// A sync that carried out the indexer's ask and failed (a data file's
// fdatasync) must leave the ask an ask: the next round still puts it off
// during a drop, rather than sync badger's files as if rows waited for
// them, holding the round's appends for the whole drop.
func TestIndexSyncAskStaysPutOffAfterFailedSync(t *testing.T) {
	w := openAsked(t) // closed by its cleanup, after the drop's
	// This round carries out the ask, and its data file's sync fails.
	var failed atomic.Bool
	injectFaults(w, &faultHooks{fdatasync: func(string) error {
		if failed.CompareAndSwap(false, true) {
			return syscall.EIO
		}
		return nil
	}})
	if _, err := w.AppendWait(sk(0), testEntry(10, 1<<10, 1), true); err == nil {
		t.Fatal("append acknowledged though its fdatasync failed")
	}
	d := startDrop(t, w)
	if !d.appendAnswered(11, 5*time.Second) {
		t.Fatal("after a failed sync, an append waited for badger's sync during a drop (the ask came back as rows that must be synced)")
	}
}

// openAsked opens a WAL whose indexer asks for badger's files to be synced
// every millisecond of indexed frames (for the test's duration), and
// returns once such an ask is pending.
func openAsked(t *testing.T) *WAL {
	t.Helper()
	every := indexSyncEvery
	t.Cleanup(func() { indexSyncEvery = every })
	indexSyncEvery = time.Millisecond
	w := openTest(t, mkdir(t), testOptions(t))
	t.Cleanup(func() { w.Close() }) // before the restore: the indexer reads indexSyncEvery
	for i := range 3 {
		mustAppend(t, w, sk(0), testEntry(uint64(i), 1<<10, 1), true)
		time.Sleep(2 * indexSyncEvery)
	}
	waitIndexed(t, w)
	if !dbAsked(w) {
		t.Fatal("the indexer did not ask for badger's files to be synced")
	}
	return w
}

// dbAsked reports whether the indexer's ask to sync badger's files is
// pending.
func dbAsked(w *WAL) bool {
	w.syncer.mu.Lock()
	defer w.syncer.mu.Unlock()
	return w.syncer.dbAsked
}
