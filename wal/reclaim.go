package wal

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Reclaim gives the space of delivered entries back to the file system.
// badger frees nothing on per-key deletes (measured); what works is
// DropPrefix on whole consumed segments (one prefix each, see keys.go),
// which removes their keys from the LSM and credits the value-log files
// they point into, followed by value-log GC, which rewrites the few live
// values of a mostly dead file and deletes it.

type dropTarget struct {
	st  *stream
	seg uint64
}

type dropResult struct {
	segments int
	err      error
}

// ReclaimResult describes one Reclaim.
type ReclaimResult struct {
	Segments   int           // consumed segments dropped
	GCRewrites int           // value-log files garbage-collected
	Before     int64         // bytes on disk before
	After      int64         // bytes on disk after
	Took       time.Duration // wall time
}

// Reclaim drops every fully consumed segment and runs value-log GC until
// badger finds nothing more to rewrite. The background loop calls it every
// Options.ReclaimInterval; call it yourself to free space at once. Appends
// are queued, not refused, while segments are dropped. Safe for concurrent
// use (calls are serialised).
func (w *WAL) Reclaim() (ReclaimResult, error) {
	w.reclaimMu.Lock()
	defer w.reclaimMu.Unlock()
	if w.closed.Load() {
		return ReclaimResult{}, ErrClosed
	}
	start := time.Now()
	res := ReclaimResult{Before: w.rescanned()}

	// Dropping must not overlap a write (badger refuses writes during
	// DropPrefix), so the committer does it between two groups.
	req := &request{kind: reqPlan, planc: make(chan dropResult, 1)}
	w.enqueue(req)
	dr, ok := <-req.planc
	if !ok {
		return res, ErrClosed
	}
	res.Segments = dr.segments
	if dr.err != nil {
		return res, dr.err
	}
	var err error
	for res.GCRewrites < 10000 {
		err = w.db.RunValueLogGC(0.5)
		if err != nil {
			break
		}
		res.GCRewrites++
	}
	if err != nil && !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
		return res, w.diskError("garbage-collect the value log", err)
	}
	res.After = w.rescanned()
	res.Took = time.Since(start)
	w.reclaimStats.Store(&res)
	w.lastReclaim.Store(time.Now().UnixNano())
	return res, nil
}

func (w *WAL) rescanned() int64 {
	w.rescan()
	return w.DiskBytes()
}

// dropConsumed runs in the committer, after a sync: it picks the segments
// whose every entry is below the committed position, drops them, and forgets
// their index rows.
func (w *WAL) dropConsumed() dropResult {
	cs := &w.committerSt
	targets := append(cs.retryDrops, w.plan()...)
	cs.retryDrops = nil
	if len(targets) == 0 {
		return dropResult{}
	}
	prefixes := make([][]byte, len(targets))
	for i, t := range targets {
		prefixes[i] = segmentPrefix(t.st.id, t.seg)
	}
	if err := w.db.DropPrefix(prefixes...); err != nil {
		cs.retryDrops = targets
		return dropResult{err: w.diskError("drop consumed segments", err)}
	}
	txn := w.db.NewTransaction(true)
	defer txn.Discard()
	for _, t := range targets {
		if err := txn.Delete(segmentKey(t.st.id, t.seg)); err != nil {
			return dropResult{segments: len(targets), err: w.diskError("delete segment index", err)}
		}
	}
	// A stale index row only makes a reader seek into an empty range; it
	// need not be synced.
	if err := txn.Commit(); err != nil {
		return dropResult{segments: len(targets), err: w.diskError("delete segment index", err)}
	}
	return dropResult{segments: len(targets)}
}

// plan chooses the consumed segments and removes them from the streams'
// segment lists. A segment is consumed when the next one starts at or below
// the committed offset; the segment being written is consumed when the
// committed offset is the stream's end, and is then rolled so new entries
// go to a fresh prefix. Committer only.
func (w *WAL) plan() []dropTarget {
	var out []dropTarget
	w.mu.RLock()
	list := w.list
	w.mu.RUnlock()
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
	for {
		select {
		case <-w.closing:
			return
		case <-t.C:
		}
		if res, err := w.Reclaim(); err != nil {
			if !errors.Is(err, ErrClosed) {
				w.log.Warn("wal: reclaim failed", "dir", w.dir, "err", err)
			}
		} else if res.Segments > 0 {
			w.log.Debug("wal: reclaimed", "segments", res.Segments, "gc", res.GCRewrites, "before", res.Before, "after", res.After)
		}
	}
}
