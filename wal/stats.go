package wal

import (
	"time"

	"github.com/dgraph-io/badger/v4"
)

// StreamStats describes one stream.
type StreamStats struct {
	Key StreamKey
	// NextOffset is the offset the next entry will get (of synced data).
	NextOffset int64
	// Committed is the reader's persisted position.
	Committed int64
	// PendingEntries and PendingBytes are what lies between Committed and
	// NextOffset (stored encodings, i.e. compressed).
	PendingEntries int64
	PendingBytes   int64
	// OldestPending is the age of the first pending entry (from its
	// ReceivedAt); 0 when nothing is pending.
	OldestPending time.Duration
	// Segments is how many segments of the stream are on disk.
	Segments int
}

// Stats is a snapshot of the WAL.
type Stats struct {
	Streams        []StreamStats
	PendingEntries int64
	PendingBytes   int64
	// DiskBytes is the space the directory takes; MaxDiskBytes the limit
	// (0: none); Pressure as returned by Pressure.
	DiskBytes    int64
	MaxDiskBytes int64
	Pressure     float64
	DeadLetters  int
	// DataFiles is how many data files hold entries (or are being
	// written): a stream that lags keeps every file from its oldest
	// pending entry on.
	DataFiles int
	// LastReclaim is the outcome of the latest Reclaim (nil before one).
	LastReclaim *ReclaimResult
	// Groups and Syncs count group commits (each one write to the data
	// file) and syncs since Open.
	Groups, Syncs int64
}

// Stats returns a snapshot. It reads one entry per stream with a backlog
// (for its age) and no more. Safe for concurrent use.
func (w *WAL) Stats() Stats {
	var s Stats
	w.streams.mu.RLock()
	list := w.streams.list
	w.streams.mu.RUnlock()
	now := time.Now()
	var txn *badger.Txn
	if w.acquireDB() {
		defer w.releaseDB()
		txn = w.db.NewTransaction(false)
		defer txn.Discard()
	}
	for _, st := range list {
		st.mu.Lock()
		ss := StreamStats{
			Key:            st.key,
			NextOffset:     st.readable.Offset,
			Committed:      st.committed.Offset,
			PendingEntries: st.readable.CumEntries - st.committed.CumEntries,
			PendingBytes:   st.readable.CumBytes - st.committed.CumBytes,
			Segments:       len(st.segs),
		}
		seg := segmentFor(st.segs, st.committed.Offset)
		st.mu.Unlock()
		if ss.PendingEntries > 0 && txn != nil {
			if at, ok := w.firstReceivedAt(txn, st, seg, ss.Committed, ss.NextOffset); ok {
				ss.OldestPending = now.Sub(time.Unix(0, at))
			}
		}
		s.Streams = append(s.Streams, ss)
		s.PendingEntries += ss.PendingEntries
		s.PendingBytes += ss.PendingBytes
	}
	s.DiskBytes = w.DiskBytes()
	s.MaxDiskBytes = w.opts.MaxDiskBytes
	s.Pressure = w.Pressure()
	s.DeadLetters = w.DeadLetterCount()
	s.DataFiles = len(w.data.nums())
	s.LastReclaim = w.reclaimStats.Load()
	s.Groups, s.Syncs = w.groups.Load(), w.syncs.Load()
	return s
}

func (w *WAL) firstReceivedAt(txn *badger.Txn, st *stream, seg uint64, from, limit int64) (at int64, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	it, prefix := entriesFrom(txn, st.id, seg, from)
	defer it.Close()
	for ; it.ValidForPrefix(prefix); it.Next() {
		_, _, off, ok := parseEntryKey(it.Item().Key())
		if !ok || off < from {
			continue
		}
		if off >= limit {
			return 0, false
		}
		val, err := it.Item().ValueCopy(nil)
		if err != nil {
			return 0, false
		}
		ptr, err := decodeDataPtr(val)
		if err != nil {
			return 0, false
		}
		at, err := w.data.readReceivedAt(ptr)
		return at, err == nil
	}
	return 0, false
}
