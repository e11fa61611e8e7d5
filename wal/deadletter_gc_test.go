package wal

import (
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestDroppedDeadLetterNotWrittenBackByValueLogGC drives badger into the
// order that brings a dropped dead letter back (deadletter_shadow.go):
// the letter's delete and its old row compacted into one table while a
// read pins them both, the GC rewriting the old row into the memtable,
// then a compaction of that table alone (a DropPrefix compacts the lowest
// level first) dropping the delete with the old row, and the rewritten
// copy flushed below nothing.
func TestDroppedDeadLetterNotWrittenBackByValueLogGC(t *testing.T) {
	dir := mkdir(t)
	o := testOptions(t)
	o.MemTableSize, o.ValueLogFileSize = 1<<20, 1<<20
	w := openTest(t, dir, o)
	defer func() { w.Close() }()
	store := func(n int, from uint64) []uint64 {
		var ids []uint64
		for i := range n {
			id, err := w.DeadLetter(sk(0), testEntry(from+uint64(i), 10<<10, 1), "test")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	junk := 0
	put := func() []byte { // a row of no table of the WAL's
		junk++
		k := []byte{0xfe, 'j', byte(junk)}
		if err := w.db.Update(func(txn *badger.Txn) error { return txn.Set(k, []byte{1}) }); err != nil {
			t.Fatal(err)
		}
		return k
	}
	dropPrefix := func(k []byte) { // flushes the memtables, compacts the lowest level first
		w.dbWriteMu.Lock()
		defer w.dbWriteMu.Unlock()
		if err := w.db.DropPrefix(k); err != nil {
			t.Fatal(err)
		}
	}
	fillers := store(60, 1000) // ~600 KiB of the first value log: garbage once dropped
	victim := store(1, 1)[0]
	store(60, 2000) // the rest of the first log and into the second
	for _, id := range fillers {
		if err := w.Drop(id); err != nil {
			t.Fatal(err)
		}
	}
	dropPrefix(put()) // the fillers' rows and deletes meet: their garbage is counted
	pin := w.db.NewTransaction(false)
	if err := w.Drop(victim); err != nil {
		t.Fatal(err)
	}
	later := put()
	dropPrefix(put()) // the victim's delete and old row into one table, both kept
	pin.Discard()
	res, err := w.Reclaim()
	if err != nil {
		t.Fatal(err)
	}
	if res.GCRewrites == 0 {
		t.Fatal("value-log GC rewrote nothing: the test no longer sets up what it means to")
	}
	dropPrefix(later)
	check := func(when string) {
		t.Helper()
		d, err := w.DeadLetterByID(victim)
		if errors.Is(err, ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("%s: dead letter %d: %v", when, victim, err)
		}
		pid, _ := checkPayload(d.Entry.Data)
		t.Fatalf("%s: dead letter %d (payload %x) back after it was dropped", when, victim, pid)
	}
	check("running")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openTest(t, dir, o)
	check("reopened")
}

// TestDeleteDeadAgain: the deleted rows a GC could write back are listed,
// deleted again in several requests, and a row stored under a listed id
// meanwhile (ids are used again after a restart) stays.
func TestDeleteDeadAgain(t *testing.T) {
	w := openTest(t, mkdir(t), testOptions(t))
	defer w.Close()
	ids := deadLetters(t, w, sk(0), 150)
	for _, id := range ids[:140] {
		if err := w.Drop(id); err != nil {
			t.Fatal(err)
		}
	}
	keys := w.shadowedDeadLetters()
	if len(keys) != 140 {
		t.Fatalf("%d deleted rows listed with their old rows below, want 140", len(keys))
	}
	keys = append(keys, deadKey(ids[145])) // as if stored again meanwhile
	if err := w.deleteDeadAgain(keys); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		_, err := w.DeadLetterByID(id)
		if gone := errors.Is(err, ErrNotFound); gone != (i < 140) {
			t.Fatalf("dead letter %d: %v after deleting again", id, err)
		}
	}
}
