package wal

import (
	"errors"
	"math"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Reclaim gives the space of delivered entries back to the file system: a
// data file goes once every stream with frames in it has committed past
// them. The index rows of consumed entries go by DropPrefix on whole
// consumed segments (one prefix each, see keys.go): badger frees nothing
// on per-key deletes (measured). Value-log GC then frees the files of
// dead letters that were replayed or dropped.

type dropTarget struct {
	st  *stream
	seg uint64
}

// dropPlan is what the committer chose for Reclaim to remove: consumed
// data files, out of the file list already, and consumed index segments,
// out of their streams' segment lists already.
type dropPlan struct {
	files   []*dataFile
	targets []dropTarget
	err     error
}

// ReclaimResult describes one Reclaim.
type ReclaimResult struct {
	Segments   int           // consumed index segments dropped (and any a crash brought back, orphanSegments)
	DataFiles  int           // consumed data files deleted
	GCRewrites int           // value-log files garbage-collected
	Before     int64         // bytes on disk before
	After      int64         // bytes on disk after
	Took       time.Duration // wall time
}

// Reclaim drops every fully consumed segment and runs value-log GC until
// badger finds nothing more to rewrite. The background loop calls it every
// Options.ReclaimInterval; call it yourself to free space at once. Appends
// go on meanwhile: only the choice of what to drop is made between two
// groups, by the committer; the slow part (deleting files, badger's
// DropPrefix, which flushes its memtables: 30–110 ms each, measured in
// burst runs, during which every append used to wait) runs here. Safe for
// concurrent use (calls are serialised).
func (w *WAL) Reclaim() (ReclaimResult, error) {
	w.reclaimMu.Lock()
	defer w.reclaimMu.Unlock()
	if w.closed.Load() {
		return ReclaimResult{}, ErrClosed
	}
	start := time.Now()
	res := ReclaimResult{Before: w.rescanned()}

	req := &request{kind: reqPlan, planc: make(chan dropPlan, 1)}
	w.enqueue(req)
	plan, ok := <-req.planc
	if !ok {
		return res, ErrClosed
	}
	if plan.err != nil {
		return res, plan.err
	}
	w.reclaimStep(stepPlanned)
	var err error
	res.DataFiles, err = w.removeDataFiles(plan.files)
	if err != nil {
		err = w.diskError("delete consumed data files", err)
	}
	var segErr error
	res.Segments, segErr = w.dropSegments(append(w.retryDrops, plan.targets...))
	if err = errors.Join(err, segErr); err != nil {
		return res, err
	}
	w.reclaimStep(stepDropped)
	if res.GCRewrites, err = w.collectValueLogs(); err != nil {
		return res, w.diskError("garbage-collect the value log", err)
	}
	res.After = w.rescanned()
	res.Took = time.Since(start)
	w.reclaimStats.Store(&res)
	w.lastReclaim.Store(time.Now().UnixNano())
	return res, nil
}

// collectValueLogs runs badger's value-log GC until it finds nothing more
// to rewrite, and returns how many logs it rewrote. A rewrite copies the
// live entries of a log (dead letters) into the current one, unsynced
// (SyncWrites off), and deletes the old log at once — unless an iterator
// is open: then badger deletes it when the last one closes (badger v4.9.6
// value.go, valueLog.rewrite and decrIteratorCount). So an iterator is
// held across the GC and closed once badger's files are synced: a log
// goes only when its entries are on disk elsewhere; deleted before, a
// power loss would lose them (TestPowerLossAfterValueLogGC). If the sync
// fails the logs still go (appends have stopped then, see syncFiles).
// Reclaim only.
func (w *WAL) collectValueLogs() (int, error) {
	txn := w.db.NewTransaction(false)
	defer txn.Discard()
	holdDeletes := txn.NewIterator(badger.IteratorOptions{})
	defer holdDeletes.Close()
	// Dead letters deleted before the GC: a rewrite may write them back
	// under their delete (deadletter_shadow.go), and a compaction during
	// the GC may drop that delete. Those deleted during the GC are found
	// after it: the held iterator keeps their deletes.
	shadowed := w.shadowedDeadLetters()
	n := 0
	var err error
	for n < 10000 {
		if err = w.db.RunValueLogGC(0.5); err != nil {
			break
		}
		n++
	}
	switch {
	case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
		err = nil
	case err != nil && n > 0 && strings.Contains(err.Error(), "already marked for deletion"):
		// A log rewritten in this run, its deletion held, picked again
		// (a compaction counted more of it as garbage): nothing more.
		err = nil
	}
	if n > 0 {
		shadowed = append(shadowed, w.shadowedDeadLetters()...)
		err = errors.Join(err, w.deleteDeadAgain(shadowed), w.syncBadger())
	}
	return n, err
}

// syncBadger returns once everything written to badger so far is on
// disk: a step that asks for badger's files to be synced, as a Commit
// does, then a barrier, which has it synced at once under SyncInterval
// too. Not for the committer.
func (w *WAL) syncBadger() error {
	if err := w.run(func(*txnWork) error { return nil }); err != nil {
		return err
	}
	return w.syncBarrier()
}

func (w *WAL) rescanned() int64 {
	w.rescan()
	return w.DiskBytes()
}

// planDrops runs in the committer, after a sync barrier (every written
// frame is indexed, every position that reclaim trusts is synced): it
// takes the consumed data files out of the file list — the active one too
// when everything in it is consumed (appends then start a new one) — and
// the consumed index segments out of their streams, for Reclaim to remove.
func (w *WAL) planDrops() dropPlan {
	// The committed offsets are copied first, so that no stream lock is
	// taken under dataFiles.mu (lock order, see WAL). They cannot move
	// meanwhile: only the committer, running this, sets them.
	committedBy := w.committedOffsets()
	committed := func(sid uint32) int64 {
		if c, ok := committedBy[sid]; ok {
			return c
		}
		return math.MaxInt64 // frames no stream owns are never read
	}
	d := w.data
	if d.active != nil && d.activeSize > 0 && d.isConsumed(d.active, committed) {
		d.active = nil // the next append starts a new file
	}
	files := d.consumed(committed)
	d.closeInactive()
	d.detach(files)
	return dropPlan{files: files, targets: w.plan()}
}

// removeDataFiles deletes consumed data files planDrops took out of the
// list, then their 'f' rows (left behind they are only deleted at the next
// Open). A file that cannot be deleted goes back to the list, still
// consumed, for the next Reclaim. Reclaim only.
func (w *WAL) removeDataFiles(files []*dataFile) (int, error) {
	if len(files) == 0 {
		return 0, nil
	}
	gone, err := w.data.remove(files)
	if len(gone) == 0 {
		return 0, err
	}
	w.reclaimStep(stepUnlinked)
	txn := w.db.NewTransaction(true)
	defer txn.Discard()
	for _, f := range gone {
		for sid := range f.ends {
			if terr := txn.Delete(fileEndKey(f.num, sid)); terr != nil {
				return len(gone), errors.Join(err, terr)
			}
		}
	}
	return len(gone), errors.Join(err, w.commitTxn(txn))
}

// dropSegments drops the index rows of consumed segments with one
// DropPrefix, then their rows in the segment table. Segments whose
// DropPrefix failed are kept in w.retryDrops for the next Reclaim.
// Reclaim only.
func (w *WAL) dropSegments(targets []dropTarget) (int, error) {
	w.retryDrops = nil
	if len(targets) == 0 {
		return 0, nil
	}
	prefixes := make([][]byte, len(targets))
	for i, t := range targets {
		prefixes[i] = segmentPrefix(t.st.id, t.seg)
	}
	// badger refuses every write while DropPrefix runs (ErrBlockedWrites):
	// the WAL's own writes wait for it instead (dbWriteMu).
	w.dbWriteMu.Lock()
	w.reclaimStep(stepDropPrefix)
	err := w.db.DropPrefix(prefixes...)
	w.dbWriteMu.Unlock()
	if err != nil {
		w.retryDrops = targets
		return 0, w.diskError("drop consumed segments", err)
	}
	w.reclaimStep(stepPrefixDropped)
	txn := w.db.NewTransaction(true)
	defer txn.Discard()
	for _, t := range targets {
		if err := txn.Delete(segmentKey(t.st.id, t.seg)); err != nil {
			return len(targets), w.diskError("delete segment index", err)
		}
	}
	// A stale index row only makes a reader seek into an empty range; it
	// need not be synced.
	if err := w.commitTxn(txn); err != nil {
		return len(targets), w.diskError("delete segment index", err)
	}
	return len(targets), nil
}

// The steps of Reclaim's removal at which faultHooks.reclaimStep runs.
const (
	stepPlanned       = "planned"        // before the data files are deleted
	stepUnlinked      = "unlinked"       // files deleted, their 'f' rows not yet
	stepDropPrefix    = "drop-prefix"    // before DropPrefix
	stepPrefixDropped = "prefix-dropped" // after it, segment rows not yet deleted
	stepDropped       = "dropped"        // all removed, before value-log GC
)

var reclaimSteps = []string{stepPlanned, stepUnlinked, stepDropPrefix, stepPrefixDropped, stepDropped}

func (w *WAL) reclaimStep(step string) {
	if h := w.faults.Load(); h != nil && h.reclaimStep != nil {
		h.reclaimStep(step)
	}
}

// commitTxn commits a write transaction of the WAL's own; never while a
// DropPrefix runs (dbWriteMu).
func (w *WAL) commitTxn(txn *badger.Txn) error {
	w.dbWriteMu.RLock()
	defer w.dbWriteMu.RUnlock()
	return txn.Commit()
}

// committedOffsets returns each stream's committed offset, by stream id.
func (w *WAL) committedOffsets() map[uint32]int64 {
	w.streams.mu.RLock()
	list := w.streams.list
	w.streams.mu.RUnlock()
	out := make(map[uint32]int64, len(list))
	for _, st := range list {
		st.mu.Lock()
		out[st.id] = st.committed.Offset
		st.mu.Unlock()
	}
	return out
}

// plan chooses the consumed segments and removes them from the streams'
// segment lists. A segment is consumed when the next one starts at or below
// the committed offset; the segment being written is consumed when the
// committed offset is the stream's end, and is then rolled so new entries
// go to a fresh prefix. Committer only.
func (w *WAL) plan() []dropTarget {
	var out []dropTarget
	w.streams.mu.RLock()
	list := w.streams.list
	w.streams.mu.RUnlock()
	for _, st := range list {
		st.mu.Lock()
		c := st.committed.Offset
		keep := st.segs[:0]
		for i, s := range st.segs {
			current := st.meta.HasSeg && s.seg == st.meta.Seg
			var consumed bool
			switch {
			case i+1 < len(st.segs):
				consumed = st.segs[i+1].first <= c
			default:
				consumed = c >= st.meta.Next && st.readable.Offset == st.meta.Next
			}
			if !consumed {
				keep = append(keep, s)
				continue
			}
			out = append(out, dropTarget{st, s.seg})
			if current {
				st.meta.Seg++
				st.meta.HasSeg = false
			}
		}
		clear(st.segs[len(keep):])
		st.segs = keep
		st.mu.Unlock()
	}
	return out
}

func (w *WAL) reclaimLoop() {
	defer w.bgwg.Done()
	t := time.NewTicker(w.opts.ReclaimInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-w.closing:
			return
		case <-t.C:
		}
		res, err := w.Reclaim()
		switch {
		case errors.Is(err, ErrClosed):
		case err != nil:
			if !failing { // once per run of failures
				w.log.Warn("wal: reclaim failed; retried every interval", "dir", w.dir, "every", w.opts.ReclaimInterval, "err", err)
			}
			failing = true
		case failing:
			failing = false
			w.log.Info("wal: reclaim works again", "dir", w.dir)
		}
		if err == nil && res.Segments > 0 {
			w.log.Debug("wal: reclaimed", "segments", res.Segments, "gc", res.GCRewrites, "before", res.Before, "after", res.After)
		}
	}
}
