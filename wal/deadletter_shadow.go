package wal

import (
	"bytes"
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// Dropped dead letters that value-log GC could bring back.
//
// A dead letter's row is large, so its value lives in badger's value log.
// Drop (and Replay) delete the row: a tombstone at a new version above the
// row's version. badger's GC rewrite of a value log (badger v4.9.6
// value.go:162, valueLog.rewrite) looks each entry up at its own version
// (value.go:208; db.go:789, DB.get, returns the version asked for,
// db.go:807), not the newest: the deleted row's old version is still in
// the LSM below its tombstone until a compaction merges the two, so it
// counts as live (value.go:212-236) and is
// written back with its old version and key (value.go:239-246, 344,
// batchSet) into the memtable: above the tombstone in the LSM. A later
// compaction that takes the tombstone and the old row's original copy
// together but not the rewritten copy (levels.go:802-836: the tombstone is
// at or below discardTs and no lower level overlaps, so it and the older
// versions it meets are left out) drops the tombstone, and the rewritten
// copy, no longer shadowed, is read again: the dropped letter is back,
// in the running WAL and after a restart. badger's clamp of discardTs
// while a rewrite runs (value.go:189, levels.go:696) only covers
// tombstones written during the rewrite and only until it ends.
//
// The WAL therefore deletes such rows again after each GC run: the new
// tombstone is written after the rewritten copy, so it lands in the same
// memtable or a newer one, above the copy, and any compaction that takes
// the copy takes it too. Rows to delete again are those whose newest
// version is a tombstone with an older version still below it: only they
// can be rewritten. Open deletes them again too, for a crash between a
// GC and its deletes again; a compaction in the milliseconds between
// badger's Open and that delete could still bring one back (not seen).

// shadowedDeadLetters returns the keys of dead letters whose newest
// version is a delete while an older version is still stored.
func (w *WAL) shadowedDeadLetters() [][]byte {
	txn := w.db.NewTransaction(false)
	defer txn.Discard()
	opt := badger.IteratorOptions{AllVersions: true, Prefix: []byte{tagDead}}
	it := txn.NewIterator(opt)
	defer it.Close()
	var keys [][]byte
	var last []byte
	lastDeleted := false
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		if bytes.Equal(k, last) {
			// An older version under a delete: the delete shadows it.
			if lastDeleted && (len(keys) == 0 || !bytes.Equal(keys[len(keys)-1], k)) {
				keys = append(keys, item.KeyCopy(nil))
			}
			continue
		}
		last = item.KeyCopy(last[:0])
		lastDeleted = item.IsDeletedOrExpired()
	}
	return keys
}

// deleteDeadAgain deletes the rows keys again, in the committer, each only
// if it is still absent then: a dead letter stored meanwhile under an id
// that was used before (ids start again above the highest stored one at
// Open) stays. A few keys per request, so that the committer's accounting
// (txnWork.full) keeps each transaction within badger's limits.
func (w *WAL) deleteDeadAgain(keys [][]byte) error {
	const perRequest = 64
	for len(keys) > 0 {
		chunk := keys[:min(perRequest, len(keys))]
		keys = keys[len(chunk):]
		err := w.run(func(tw *txnWork) error {
			for _, k := range chunk {
				_, err := tw.txn.Get(k)
				if err == nil {
					continue
				}
				if !errors.Is(err, badger.ErrKeyNotFound) {
					return w.diskError("read dead letter", err)
				}
				if err := tw.txn.Delete(k); err != nil {
					return w.diskError("delete dead letter again", err)
				}
				tw.note(k, nil)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
