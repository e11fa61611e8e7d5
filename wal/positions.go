package wal

// Reader positions and delivered spans in the group commit.
//
// A lazy commit (CommitAsync after each PutLogs answer, MarkDelivered) is
// not written in the group's badger transaction: its rows go to the
// indexer with the group's index rows, written after the group's sync.
// Written by the committer, a transaction of positions alone made every
// append of its group wait for a badger commit (several goroutine
// hand-offs and a write to badger's log), and with writers committing
// after each answer, one group in a few dozen carried one: the tail of the
// producers' acknowledgements while delivering. A lazy position was never
// synced with its group anyway (badger's files are synced for it at most
// every indexSyncEvery, and before reclaim trusts it); a process crash
// keeps it once the indexer has written it, one sync after the commit.
//
// A Commit (answered once durable) still writes its rows in the group's
// transaction, synced before the answer; they also go to the indexer, so
// that a lazy row of the same stream still on its way there cannot land
// after it and move the stream's position back: the indexer writes rows
// in the committer's order.

// addCommit adds reader commit r to the step tw. Committer only.
func (w *WAL) addCommit(tw *txnWork, r *request) error {
	first := len(tw.posRows)
	at := int64(-1)
	if !r.spansOnly {
		tw.posRows = append(tw.posRows, kv{key: sidKey(tagPosition, r.st.id), val: r.pos.encode()})
		at = r.pos.Offset
	}
	if k, v, del, ok := r.st.spansRow(at); ok {
		tw.posRows = append(tw.posRows, kv{key: k, val: v, del: del})
	}
	if r.lazy {
		w.committerSt.lazyDirty = true
		return nil
	}
	for _, row := range tw.posRows[first:] {
		err := tw.txn.Set(row.key, row.val)
		if row.del {
			err = tw.txn.Delete(row.key)
		}
		if err != nil {
			tw.posRows = tw.posRows[:first]
			return w.diskError("write reader position", err)
		}
		tw.note(row.key, row.val)
	}
	tw.needDB = true
	return nil
}
