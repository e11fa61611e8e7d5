package wal

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// What the WAL does when the disk fails under it: the data files' syncs
// (fdatasync) or the index writes (badger). In both cases nothing
// acknowledged may be lost, Reclaim must not delete a file it cannot vouch
// for, and the WAL must go on once the disk does.

func injectFaults(w *WAL, h *faultHooks) { w.faults.Store(h) }

// TestSyncFailure: appends whose fdatasync fails are not acknowledged; the
// file is poisoned (a later fdatasync of it proves nothing), so appends
// move to a new file; Reclaim takes nothing undelivered; afterwards every
// acknowledged entry reads back, also after a restart, and once delivered
// every data file but the one being written goes.
func TestSyncFailure(t *testing.T) {
	dir := mkdir(t)
	o, logs := loggedOptions(t)
	w := openTest(t, dir, o)
	acked := map[uint64]bool{}
	for i := range 3 {
		mustAppend(t, w, sk(0), testEntry(uint64(i), 1000, 1), false)
		acked[uint64(i)] = true
	}
	first := dataFileNums(t, dir)
	injectFaults(w, &faultHooks{fdatasync: func(string) error { return syscall.EIO }})
	for i := range 5 {
		if _, err := w.AppendWait(sk(0), testEntry(uint64(100+i), 1000, 1), false); err == nil {
			t.Fatalf("append %d acknowledged while fdatasync fails", i)
		}
	}
	// Nothing is delivered: Reclaim, failing or not, deletes nothing.
	before := dataFileNums(t, dir)
	res, err := w.Reclaim()
	if now := dataFileNums(t, dir); len(now) != len(before) || res.DataFiles != 0 {
		t.Fatalf("Reclaim while syncs fail (%+v, %v) took data files %v to %v", res, err, before, now)
	}
	if n := strings.Count(logs.String(), "disk error"); n != 1 {
		t.Fatalf("disk error logged %d times:\n%s", n, logs.String())
	}
	injectFaults(w, nil)
	for i := range 3 {
		mustAppend(t, w, sk(0), testEntry(uint64(10+i), 1000, 1), false)
		acked[uint64(10+i)] = true
	}
	if now := dataFileNums(t, dir); now[len(now)-1] == first[len(first)-1] {
		t.Fatalf("appends after a failed sync still go to poisoned file %d", first[len(first)-1])
	}
	if !strings.Contains(logs.String(), "disk writes succeed again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
	check := func(w *WAL) {
		t.Helper()
		got := map[uint64]bool{}
		for _, id := range readThrough(t, w, sk(0)).ids {
			got[id] = true
		}
		for id := range acked {
			if !got[id] {
				t.Fatalf("acknowledged entry %d lost; read %v", id, got)
			}
		}
	}
	check(w)
	w.Close()
	w = openTest(t, dir, o)
	defer w.Close()
	check(w)
	consumeAll(t, w)
	if _, err := w.Reclaim(); err != nil {
		t.Fatal(err)
	}
	if left := dataFileNums(t, dir); len(left) != 0 {
		t.Fatalf("data files %v left after everything was delivered", left)
	}
}

// TestIndexFailure: while badger refuses the index rows, synced appends
// are acknowledged (their frames are durable) but not yet readable, and
// Reclaim deletes nothing: the data files' ends are not known yet. Once
// the index write succeeds again (retried every second) they read back.
func TestIndexFailure(t *testing.T) {
	dir := mkdir(t)
	o, logs := loggedOptions(t)
	w := openTest(t, dir, o)
	defer w.Close()
	mustAppend(t, w, sk(0), testEntry(0, 1000, 1), true)
	if got := consumeAll(t, w); got != 1 {
		t.Fatalf("consumed %d", got)
	}
	injectFaults(w, &faultHooks{index: func() error { return errors.New("injected: badger write failed") }})
	off := mustAppend(t, w, sk(0), testEntry(1, 1000, 1), true)
	files := dataFileNums(t, dir)
	if _, err := w.Reclaim(); !errors.Is(err, errIndexPending) {
		t.Fatalf("Reclaim with the index behind: %v", err)
	}
	if now := dataFileNums(t, dir); len(now) != len(files) {
		t.Fatalf("data files %v became %v while an acknowledged entry was not indexed", files, now)
	}
	// Syncs go on meanwhile; the disk is not called well while the index
	// fails.
	mustAppend(t, w, sk(0), testEntry(2, 1000, 1), true)
	time.Sleep(1200 * time.Millisecond) // one retry
	if strings.Contains(logs.String(), "succeed again") {
		t.Fatalf("recovery logged while the index write fails:\n%s", logs.String())
	}
	injectFaults(w, nil)
	r, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	es, err := r.Read(ctx, 1<<20, 10)
	if err != nil || len(es) != 2 || es[0].BaseOffset != off {
		t.Fatalf("read after the index recovered: %d entries, %v", len(es), err)
	}
	for i, e := range es {
		if id, _ := checkPayload(e.Data); id != uint64(i+1) {
			t.Fatalf("entry %d: id %d", i, id)
		}
	}
	if n := strings.Count(logs.String(), "disk error"); n != 1 || !strings.Contains(logs.String(), "succeed again") {
		t.Fatalf("want one disk error and one recovery logged:\n%s", logs.String())
	}
}

// TestBadgerSyncFailure: when badger's files fail to sync, the rows at
// stake (a new stream's registry row, say) may be lost even if a later
// sync succeeds, and frames of a stream recovery does not know are dropped:
// so appends stop until a restart, and everything acknowledged before is
// still there after it.
func TestBadgerSyncFailure(t *testing.T) {
	dir := mkdir(t)
	o, logs := loggedOptions(t)
	w := openTest(t, dir, o)
	mustAppend(t, w, sk(0), testEntry(0, 1000, 1), false)
	injectFaults(w, &faultHooks{dbSync: func() error { return syscall.EIO }})
	if _, err := w.AppendWait(sk(1), testEntry(1, 1000, 1), false); err == nil {
		t.Fatal("append to a new stream acknowledged while badger's sync fails")
	}
	injectFaults(w, nil)
	if _, err := w.AppendWait(sk(0), testEntry(2, 1000, 1), false); !errors.Is(err, errBroken) {
		t.Fatalf("append after a failed badger sync: %v, want %v", err, errBroken)
	}
	if !strings.Contains(logs.String(), "appends stopped until restart") || strings.Contains(logs.String(), "succeed again") {
		t.Fatalf("log:\n%s", logs.String())
	}
	w.Close()
	w = openTest(t, dir, testOptions(t))
	defer w.Close()
	if off := mustAppend(t, w, sk(0), testEntry(3, 1000, 1), false); off != 1 {
		t.Fatalf("append after restart at offset %d, want 1", off)
	}
	if o := readThrough(t, w, sk(0)); len(o.ids) != 2 || o.ids[0] != 0 || o.ids[1] != 3 {
		t.Fatalf("stream 0 after restart: %+v", o)
	}
}

// TestSyncIntervalWhileSyncsFail: under SyncInterval acks=1 appends are
// acknowledged before their sync, but not while syncs fail: an entry in a
// poisoned file could be lost without any crash.
func TestSyncIntervalWhileSyncsFail(t *testing.T) {
	o := testOptions(t)
	o.Sync, o.SyncInterval = SyncInterval, 20*time.Millisecond
	w := openTest(t, mkdir(t), o)
	defer w.Close()
	var failing atomic.Bool
	failing.Store(true)
	injectFaults(w, &faultHooks{fdatasync: func(string) error {
		if failing.Load() {
			return syscall.EIO
		}
		return nil
	}})
	// Acknowledged at once: no sync has failed yet.
	mustAppend(t, w, sk(0), testEntry(0, 1000, 1), false)
	deadline := time.Now().Add(5 * time.Second)
	for !w.syncFailing.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the interval sync did not fail")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := w.AppendWait(sk(0), testEntry(1, 1000, 1), false); err == nil {
		t.Fatal("acks=1 append acknowledged before its sync while syncs fail")
	}
	failing.Store(false)
	mustAppend(t, w, sk(0), testEntry(2, 1000, 1), false) // waits for a good sync
	if w.syncFailing.Load() {
		t.Fatal("still failing after a good sync")
	}
}

// TestLazyRoundKeepsSyncFailing: a syncer round that carries only lazy
// reader positions syncs nothing, so it proves nothing about the disk:
// after a failed sync, SyncInterval still acknowledges acks=1 appends
// only after a good sync, also when a CommitAsync went through meanwhile.
func TestLazyRoundKeepsSyncFailing(t *testing.T) {
	o := testOptions(t)
	o.Sync, o.SyncInterval = SyncInterval, 20*time.Millisecond
	w := openTest(t, mkdir(t), o)
	defer w.Close()
	mustAppend(t, w, sk(0), testEntry(0, 1000, 1), true)
	r, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if es := readAll(t, r); len(es) != 1 {
		t.Fatalf("read %d entries, want 1", len(es))
	}
	injectFaults(w, &faultHooks{fdatasync: func(string) error { return syscall.EIO }})
	if _, err := w.AppendWait(sk(0), testEntry(1, 1000, 1), true); err == nil {
		t.Fatal("append acknowledged though its sync failed")
	}
	if err := r.CommitAsync(1); err != nil {
		t.Fatal(err)
	}
	// The round of the lazy position alone: over once the indexer wrote it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.syncBarrier()
		if off, _ := storedPosition(t, w, r); off == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lazy position was not written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !w.syncFailing.Load() {
		t.Error("a round that synced nothing cleared syncFailing")
	}
	if _, err := w.AppendWait(sk(0), testEntry(2, 1000, 1), false); err == nil {
		t.Fatal("acks=1 append acknowledged before its sync while syncs fail")
	}
}
