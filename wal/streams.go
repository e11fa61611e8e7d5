package wal

import (
	"context"
	"sync"
)

// stream is the in-memory state of one stream.
type stream struct {
	id  uint32    // read-only
	key StreamKey // read-only

	meta streamMeta // as last written; committer only

	// mu protects readable, committed, segs, wake and reader. It is a
	// leaf lock (see WAL): nothing else is locked while it is held.
	mu        sync.Mutex
	readable  position // entries below readable.Offset are written and synced
	committed position // the reader's persisted position
	segs      []segInfo
	wake      chan struct{} // closed and replaced when readable advances
	reader    *Reader
}

type segInfo struct {
	seg   uint64
	first int64
}

// Streams returns every stream, in the order they were created.
func (w *WAL) Streams() []StreamKey {
	w.mu.RLock()
	defer w.mu.RUnlock()
	keys := make([]StreamKey, len(w.list))
	for i, st := range w.list {
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
		w.mu.RLock()
		list := w.list[seen:]
		wake := w.streamsWake
		w.mu.RUnlock()
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
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.byKey[k]
}
