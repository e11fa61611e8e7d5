package wal

import (
	"context"
	"sync"
)

// streamSet is the WAL's streams. They change only in the committer (and
// Open), which reads them without mu.
type streamSet struct {
	// mu protects byKey, byID, list and wake. A stream's own fields are
	// protected by its stream.mu, which is never taken under this mu (see
	// WAL).
	mu     sync.RWMutex
	byKey  map[StreamKey]*stream
	byID   map[uint32]*stream
	list   []*stream
	wake   chan struct{} // closed and replaced when a stream appears
	nextID uint32        // the highest stream id given; committer only
}

// stream is the in-memory state of one stream.
type stream struct {
	id  uint32    // read-only
	key StreamKey // read-only

	meta streamMeta // as last written; committer only

	// mu protects readable, committed, segs, wake, reader and head. It is a
	// leaf lock (see WAL): nothing else is locked while it is held.
	mu        sync.Mutex
	readable  position // entries below readable.Offset are written and synced
	committed position // the reader's persisted position
	segs      []segInfo
	wake      chan struct{} // closed and replaced when readable advances
	reader    *Reader
	head      *Reader // split off reader (Reader.SplitHead), if any
	// spans are the delivered spans past committed (delivered.go), as
	// readers marked them; spansStored, committer only, whether the
	// stream's 'q' row exists.
	spans       []span
	spansStored bool
	// lazyIn, committer only, is committerState.indexedGen+1 when a lazy
	// position or spans row of the stream was last handed to the indexer
	// (positions.go).
	lazyIn uint64
}

type segInfo struct {
	seg   uint64
	first int64
}

// Streams returns every stream, in the order they were created.
func (w *WAL) Streams() []StreamKey {
	w.streams.mu.RLock()
	defer w.streams.mu.RUnlock()
	keys := make([]StreamKey, len(w.streams.list))
	for i, st := range w.streams.list {
		keys[i] = st.key
	}
	return keys
}

// WatchStreams calls fn on the calling goroutine, one call at a time, for
// every stream: first those that exist, then each new one as its first
// entry is written. It blocks until ctx is done or the WAL is closed, so
// the typical use is `go w.WatchStreams(ctx, startWriter)`. Safe for
// concurrent use (any number of watchers).
func (w *WAL) WatchStreams(ctx context.Context, fn func(StreamKey)) {
	seen := 0
	for {
		w.streams.mu.RLock()
		list := w.streams.list[seen:]
		wake := w.streams.wake
		w.streams.mu.RUnlock()
		for _, st := range list {
			fn(st.key)
		}
		seen += len(list)
		if w.closed.Load() {
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}

// acquireDB keeps the database open for a read; false once closed.
func (w *WAL) acquireDB() bool {
	w.dbMu.RLock()
	if w.dbClosed {
		w.dbMu.RUnlock()
		return false
	}
	return true
}

func (w *WAL) releaseDB() { w.dbMu.RUnlock() }

func (w *WAL) lookup(k StreamKey) *stream {
	w.streams.mu.RLock()
	defer w.streams.mu.RUnlock()
	return w.streams.byKey[k]
}
