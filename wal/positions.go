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
// transaction, synced before the answer. A lazy row of the same stream
// still on its way to the indexer would land after them and move the
// stream's position back, and a crash before anything newer is written
// would keep it there, before a position Commit said was durable: so
// when the stream has one, the committer first waits until the indexer
// has written it (positionsWritten). Commit is rare (hand-over, a stop, a
// corrupt entry skipped); CommitAsync never waits.

// addCommit adds reader commit r to the step tw. Committer only.
func (w *WAL) addCommit(tw *txnWork, r *request) error {
	var rows []kv
	at := int64(-1)
	if !r.spansOnly {
		rows = append(rows, kv{key: sidKey(tagPosition, r.st.id), val: r.pos.encode()})
		at = r.pos.Offset
	}
	if k, v, del, ok := r.st.spansRow(at); ok {
		rows = append(rows, kv{key: k, val: v, del: del})
	}
	if r.lazy {
		tw.posRows = append(tw.posRows, rows...)
		r.st.lazyIn = w.committerSt.indexedGen + 1
		w.committerSt.lazyDirty = true
		return nil
	}
	for _, row := range rows {
		err := tw.txn.Set(row.key, row.val)
		if row.del {
			err = tw.txn.Delete(row.key)
		}
		if err != nil {
			return w.diskError("write reader position", err)
		}
		tw.note(row.key, row.val)
	}
	tw.needDB = true
	return nil
}

// lazyQueued reports whether a lazy row of st may not be written by the
// indexer yet. Committer only.
func (w *WAL) lazyQueued(st *stream) bool {
	return st.lazyIn == w.committerSt.indexedGen+1
}

// positionsWritten waits until everything handed to the syncer so far is
// synced and indexed: every lazy row queued before is written. Committer
// only, after flushing its step.
func (w *WAL) positionsWritten() error {
	err := w.syncBarrier()
	if err == nil {
		w.committerSt.indexedGen++
	}
	return err
}
