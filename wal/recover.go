package wal

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// Recovery. badger itself replays its memtable logs after a crash; what the
// WAL adds is finding every stream's state without reading entries: the
// per-stream rows ('s', 'n', 'p', 'g') describe the frames up to the
// checkpoint ('k'), and only the frames after it — what the last syncs
// wrote before the crash — are read and indexed again (replay.go). Open
// time depends on the number of streams and segments, not on the backlog.

// load reads the per-stream keys, the credential row names and the
// dead-letter ids: all small tables.
func (w *WAL) load() error {
	return w.db.View(func(txn *badger.Txn) error {
		v, found, err := valueOf(txn, versionKey)
		switch {
		case err != nil:
			return err
		case !found:
			if !isEmpty(txn) {
				return fmt.Errorf("no format marker in a non-empty database: %w", ErrCorrupt)
			}
			// New WAL: the marker is written with the first group; a
			// crash before that leaves an empty, valid database.
			w.committerSt.needVersion = true
		case string(v) != formatVersion:
			return fmt.Errorf("format %q, want %q: deliver its backlog with the release that wrote it, or move the directory away", v, formatVersion)
		}
		if err := w.loadStreams(txn); err != nil {
			return err
		}
		return w.loadSmallTables(txn)
	})
}

// valueOf returns the value of key, and whether it exists.
func valueOf(txn *badger.Txn, key []byte) ([]byte, bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

func isEmpty(txn *badger.Txn) bool {
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = false
	it := txn.NewIterator(opt)
	defer it.Close()
	it.Rewind()
	return !it.Valid()
}

// scanPrefix calls fn for each key (copied) and value under prefix.
func scanPrefix(txn *badger.Txn, prefix []byte, values bool, fn func(k, v []byte) error) error {
	opt := badger.DefaultIteratorOptions
	opt.Prefix = prefix
	opt.PrefetchValues = false
	it := txn.NewIterator(opt)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var v []byte
		if values {
			var err error
			if v, err = it.Item().ValueCopy(nil); err != nil {
				return err
			}
		}
		if err := fn(it.Item().KeyCopy(nil), v); err != nil {
			return err
		}
	}
	return nil
}

func (w *WAL) loadStreams(txn *badger.Txn) error {
	err := scanPrefix(txn, []byte{tagStream}, true, func(k, v []byte) error {
		if len(k) != 5 {
			return fmt.Errorf("stream key %x: %w", k, ErrCorrupt)
		}
		sk, _, err := decodeStreamKey(v)
		if err != nil {
			return fmt.Errorf("stream %x: %w", k, ErrCorrupt)
		}
		st := &stream{id: sidOf(k), key: sk, wake: make(chan struct{})}
		w.streams.byKey[sk] = st
		w.streams.byID[st.id] = st
		w.streams.list = append(w.streams.list, st)
		w.streams.nextID = max(w.streams.nextID, st.id)
		return nil
	})
	if err != nil {
		return err
	}
	for _, t := range []byte{tagMeta, tagPosition, tagSegment, tagSpans} {
		err := scanPrefix(txn, []byte{t}, true, func(k, v []byte) error {
			if len(k) < 5 {
				return fmt.Errorf("key %x: %w", k, ErrCorrupt)
			}
			st := w.streams.byID[sidOf(k)]
			if st == nil {
				return nil // left over from a stream whose registry row is gone
			}
			switch t {
			case tagMeta:
				m, err := decodeMeta(v)
				if err != nil {
					return fmt.Errorf("stream %v: %w", st.key, err)
				}
				st.meta = m
			case tagPosition:
				p, err := decodePosition(v)
				if err != nil {
					return fmt.Errorf("stream %v: %w", st.key, err)
				}
				st.committed = p
			case tagSpans: // after tagPosition: trimmed to it
				spans, err := decodeSpans(v)
				if err != nil {
					return fmt.Errorf("stream %v: %w", st.key, err)
				}
				st.spans, st.spansStored = trimSpans(spans, st.committed.Offset), true
			case tagSegment:
				if len(k) != 13 || len(v) != 8 {
					return fmt.Errorf("segment key %x: %w", k, ErrCorrupt)
				}
				st.segs = append(st.segs, segInfo{seg: beUint64(k[5:]), first: int64(beUint64(v))})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, st := range w.streams.list {
		if err := w.checkTail(txn, st); err != nil {
			return err
		}
		// Segment rows the metadata does not reach: an index write split
		// over transactions can keep a segment's row and lose the rows
		// after it. Left in place, a reader would seek into the empty
		// segment and miss what recovery indexes in the current one.
		keep := st.segs[:0]
		for _, sg := range st.segs {
			if sg.seg > st.meta.Seg || sg.seg == st.meta.Seg && !st.meta.HasSeg {
				w.staleRows = append(w.staleRows, segmentKey(st.id, sg.seg))
				continue
			}
			keep = append(keep, sg)
		}
		st.segs = keep
		// A segment dropped by reclaim whose roll was not persisted.
		if st.meta.HasSeg && !slices.ContainsFunc(st.segs, func(s segInfo) bool { return s.seg == st.meta.Seg }) {
			st.meta.HasSeg = false
			st.meta.Seg++
		}
		for _, seg := range orphanSegments(txn, st) {
			w.retryDrops = append(w.retryDrops, dropTarget{st, seg})
		}
	}
	if len(w.retryDrops) > 0 {
		w.log.Warn("wal: index rows of reclaimed segments came back after a crash; the next reclaim drops them", "dir", w.dir, "segments", len(w.retryDrops))
	}
	return nil
}

// orphanSegments returns the segments of st below its first one (the
// oldest with a segment row, else the one it writes next) that still have
// index rows. Reclaim dropped them — their segment rows go only after
// DropPrefix returned — but a crash can bring their rows back: DropPrefix
// flushes the memtable without the dropped rows and releases it
// (badger v4.9.6 db.go, DB.DropPrefix → handleMemTableFlush, then
// memTable.DecrRef), yet the memtable's log file (*.mem) is only deleted
// when the last reference goes (skl.Skiplist.DecrRef → OnClose, set in
// memtable.go openMemTable), and a read that began before the drop still
// holds one. Killed before that read ends, the next Open replays the log,
// rows of the dropped prefix included, and with no segment row left no
// Reclaim would ever drop them. One seek per stream, plus one per such
// segment.
func orphanSegments(txn *badger.Txn, st *stream) []uint64 {
	floor := st.meta.Seg
	if len(st.segs) > 0 {
		floor = min(floor, st.segs[0].seg) // loaded in key order: the oldest
	}
	it, prefix := entryIterator(txn, st.id, false)
	defer it.Close()
	var out []uint64
	for it.Seek(prefix); it.ValidForPrefix(prefix); {
		_, seg, _, ok := parseEntryKey(it.Item().Key())
		if !ok || seg >= floor {
			break
		}
		out = append(out, seg)
		it.Seek(segmentPrefix(st.id, seg+1))
	}
	return out
}

// settleStreams, after replay, derives what readers see from the streams'
// metadata.
func (w *WAL) settleStreams() {
	for _, st := range w.streams.list {
		st.readable = position{Offset: st.meta.Next, CumBytes: st.meta.CumBytes, CumEntries: st.meta.CumEntries}
		if st.committed.Offset > st.readable.Offset {
			// Cannot happen when positions are only committed for synced
			// data; clamp rather than skip entries written after restart.
			w.log.Warn("wal: committed position beyond the stream end; clamping",
				"stream", st.key, "committed", st.committed.Offset, "next", st.readable.Offset)
			st.committed = st.readable
		}
	}
}

// checkTail seeks to the last entry of the stream and makes sure the stored
// next offset is past it. The metadata is written in the same transaction as
// the index rows, so this only guards against a lost metadata row; it costs
// one seek per stream.
func (w *WAL) checkTail(txn *badger.Txn, st *stream) error {
	it, prefix := entriesFromEnd(txn, st.id)
	defer it.Close()
	if !it.ValidForPrefix(prefix) {
		return nil
	}
	_, seg, off, ok := parseEntryKey(it.Item().Key())
	if !ok || off < st.meta.Next {
		return nil
	}
	end := off + 1
	if se, n, err := w.itemEntry(it.Item(), nil); err == nil {
		end = off + int64(se.Entry.Records)
		st.meta.CumBytes, st.meta.CumEntries = se.CumBytes+int64(n), se.CumEntries+1
	}
	w.log.Warn("wal: stream metadata behind its last entry; advancing", "stream", st.key, "next", st.meta.Next, "last", off)
	st.meta.Next = end
	st.meta.Seg, st.meta.HasSeg = seg, true
	return nil
}

func (w *WAL) loadSmallTables(txn *badger.Txn) error {
	v, found, err := valueOf(txn, checkpointKey)
	if err != nil {
		return err
	}
	if found {
		if w.checkpoint, err = decodeDataPos(v); err != nil {
			return err
		}
		w.data.lastNum = max(w.data.lastNum, w.checkpoint.file)
	}
	err = scanPrefix(txn, []byte{tagFileEnd}, true, func(k, v []byte) error {
		if len(k) != 13 || len(v) != 8 {
			return fmt.Errorf("data file end %x: %w", k, ErrCorrupt)
		}
		f := w.data.files[beUint64(k[1:])]
		if f == nil {
			w.staleRows = append(w.staleRows, k) // the file was deleted
			return nil
		}
		f.ends[sidOf(k[8:])] = int64(beUint64(v))
		return nil
	})
	if err != nil {
		return err
	}
	err = scanPrefix(txn, []byte{tagCred}, false, func(k, _ []byte) error {
		w.knownCreds[string(k)] = true
		return nil
	})
	if err != nil {
		return err
	}
	return scanPrefix(txn, []byte{tagDead}, false, func(k, _ []byte) error {
		if len(k) == 9 {
			w.dead.count++
			w.dead.nextID = max(w.dead.nextID, beUint64(k[1:]))
		}
		return nil
	})
}
