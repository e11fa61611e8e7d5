package wal

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// holdIndex blocks the indexer's next index write until the returned
// release is called; defer it after the WAL's Close, which waits for the
// indexer.
func holdIndex(t *testing.T, w *WAL) (release func()) {
	t.Helper()
	held := make(chan struct{})
	var once bool
	injectFaults(w, &faultHooks{index: func() error { <-held; return nil }})
	release = func() {
		if !once {
			once = true
			injectFaults(w, nil)
			close(held)
		}
	}
	return release
}

// storedPosition reads stream k's position row from badger: what a crash
// now would leave; false when there is none.
func storedPosition(t *testing.T, w *WAL, r *Reader) (int64, bool) {
	t.Helper()
	var p position
	err := w.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(sidKey(tagPosition, r.st.id))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) (err error) { p, err = decodePosition(v); return err })
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return p.Offset, true
}

// appendWithin appends and fails the test unless the append is answered
// within 10 s.
func appendWithin(t *testing.T, w *WAL, e *Entry, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := w.AppendWait(sk(0), e, true); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not answered in 10 s while the index write waits", what)
	}
}

// fourRead appends 4 entries of one record to stream 0 and returns its
// reader, which has read them.
func fourRead(t *testing.T, w *WAL) *Reader {
	t.Helper()
	for i := range 4 {
		mustAppend(t, w, sk(0), testEntry(uint64(i), 1000, 1), true)
	}
	r, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	if es := readAll(t, r); len(es) != 4 {
		t.Fatalf("read %d entries, want 4", len(es))
	}
	return r
}

// reopenedPosition opens the WAL in dir and returns stream 0's committed
// position: what a restart resumes from.
func reopenedPosition(t *testing.T, dir string) int64 {
	t.Helper()
	w := openTest(t, dir, testOptions(t))
	defer w.Close()
	r, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Committed()
}

// TestAckBeforeIndex: a synced append is answered once its frame is
// synced, without waiting for its index rows (one badger transaction
// later): recovery indexes synced frames again. It becomes readable once
// indexed.
func TestAckBeforeIndex(t *testing.T) {
	w := openTest(t, mkdir(t), testOptions(t))
	defer w.Close()
	mustAppend(t, w, sk(0), testEntry(0, 1000, 1), true) // the stream exists
	release := holdIndex(t, w)
	defer release()
	appendWithin(t, w, testEntry(1, 1000, 1), "append")
	r, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*Entry
	for len(got) < 2 {
		es, err := r.Read(ctx, 1<<20, 10)
		if err != nil {
			t.Fatalf("read after the index write: %d entries, %v", len(got), err)
		}
		got = append(got, es...)
	}
	if id, _ := checkPayload(got[1].Data); id != 1 {
		t.Fatalf("second entry has id %d", id)
	}
}

// TestLazyPositionByIndexer: a CommitAsync is answered at once and its row
// is written by the indexer, after the group's sync, so appends do not
// wait for a badger transaction of positions; a Commit after it waits for
// that row and leaves the later position stored.
func TestLazyPositionByIndexer(t *testing.T) {
	dir := mkdir(t)
	w := openTest(t, dir, testOptions(t))
	defer func() { w.Close() }() // the first WAL at a failure (Close twice is fine)
	r := fourRead(t, w)
	release := holdIndex(t, w)
	defer release()
	if err := r.CommitAsync(2); err != nil {
		t.Fatal(err)
	}
	appendWithin(t, w, testEntry(4, 1000, 1), "append after a CommitAsync")
	if off, ok := storedPosition(t, w, r); ok {
		t.Fatalf("position %d stored before the indexer wrote it", off)
	}
	if r.Committed() != 2 {
		t.Fatalf("Committed %d after CommitAsync(2)", r.Committed())
	}
	// A Commit is stored (and synced) before it returns; it waits for
	// the lazy row still on its way to the indexer, which must not land
	// over it.
	committed := make(chan error, 1)
	go func() { committed <- r.Commit(3) }()
	release()
	select {
	case err := <-committed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Commit(3) not answered once the index write went on")
	}
	if off, ok := storedPosition(t, w, r); !ok || off != 3 {
		t.Fatalf("after Commit(3) the stored position is %d (%v)", off, ok)
	}
	waitIndexed(t, w)
	if off, _ := storedPosition(t, w, r); off != 3 {
		t.Fatalf("stored position %d after the indexer caught up, want 3", off)
	}
	r.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if c := reopenedPosition(t, dir); c != 3 {
		t.Fatalf("after a restart the position is %d, want 3", c)
	}
}

// TestCommitNotUndoneByEarlierLazyRow: once Commit returns, no crash
// leaves the stream's position before it. A CommitAsync queued earlier is
// written by the indexer; if its row could land after the Commit's, a
// crash (here: an index write that fails from then on, then Close) would
// leave the older position stored after a Commit that said it was durable.
func TestCommitNotUndoneByEarlierLazyRow(t *testing.T) {
	dir := mkdir(t)
	w := openTest(t, dir, testOptions(t))
	defer func() { w.Close() }()
	r := fourRead(t, w)
	waitIndexed(t, w)
	// The first index write (the CommitAsync's) waits for held; every
	// later one fails, as the last writes before a crash would be lost.
	entered, held := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	injectFaults(w, &faultHooks{index: func() error {
		switch calls.Add(1) {
		case 1:
			close(entered)
			<-held
			return nil
		default:
			return errors.New("index write lost to a crash")
		}
	}})
	if err := r.CommitAsync(2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the CommitAsync's row did not reach the indexer")
	}
	committed := make(chan error, 1)
	go func() { committed <- r.Commit(3) }()
	select {
	case err := <-committed: // answered while the lazy row still waits
		committed <- err
	case <-time.After(300 * time.Millisecond):
	}
	close(held)
	select {
	case err := <-committed:
		if err != nil {
			t.Fatalf("Commit(3): %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Commit(3) not answered")
	}
	w.syncBarrier() // returns once the lazy row is written (its error is the later writes')
	if off, ok := storedPosition(t, w, r); !ok || off != 3 {
		t.Errorf("after Commit(3) returned, the stored position is %d (%v)", off, ok)
	}
	r.Close()
	w.Close() // the failing index write keeps the lazy row's successors
	if c := reopenedPosition(t, dir); c != 3 {
		t.Fatalf("after a restart the position is %d, want 3 (Commit(3) returned)", c)
	}
}
