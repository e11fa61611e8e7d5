package wal

import (
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The index: badger rows that find the frames of a stream by offset. They
// are written once the frames are fdatasynced (so badger never points at
// data a power loss could take), and not synced with them: recovery
// indexes the frames after the checkpoint again. To bound what recovery
// reads, the index is synced along with the data files once indexSyncBytes
// or indexSyncEvery of frames are indexed since its last sync. Nothing
// waits for that sync (the syncer puts it off while a DropPrefix runs).

const indexSyncBytes = 256 << 20

// indexSyncEvery is a variable for the tests only.
var indexSyncEvery = 5 * time.Second

type kv struct {
	key, val []byte
	del      bool
}

// indexBatch is the index rows of frames written and not yet indexed.
// Built by the committer (or recovery), merged and written by the syncer.
type indexBatch struct {
	rows    []kv // 'e' and 'g' rows, dead-letter deletes
	posRows []kv // reader positions and delivered spans (positions.go)
	metas   map[*stream]streamMeta
	ends    map[uint64]map[uint32]int64 // data file → stream → end offset
	written map[*stream]position        // stream ends the rows make readable
	cp      dataPos                     // the data-file position after the frames
	late    []ack                       // answered once the rows are written
	bytes   int64                       // frame bytes the rows index
}

func newIndexBatch() *indexBatch {
	return &indexBatch{
		metas:   make(map[*stream]streamMeta),
		ends:    make(map[uint64]map[uint32]int64),
		written: make(map[*stream]position),
	}
}

func (ib *indexBatch) empty() bool {
	return ib == nil || len(ib.rows) == 0 && len(ib.posRows) == 0 && len(ib.metas) == 0 && len(ib.late) == 0 && len(ib.ends) == 0
}

// place indexes the next entry of stream st (its metadata m, advanced): a
// new index segment when one is due, the 'e' row pointing at ptr, and the
// stream's end in ptr's file. It returns the entry's base offset and the
// segment it started, if any.
func (ib *indexBatch) place(st *stream, m *streamMeta, records int32, bodyLen int, ptr dataPtr, segmentBytes int64) (int64, *segInfo) {
	var started *segInfo
	// A new segment: the first one, one rolled by reclaim (HasSeg false,
	// Seg already advanced) or when the current one is full.
	if !m.HasSeg || m.SegBytes >= segmentBytes {
		if m.HasSeg {
			m.Seg++
		}
		m.HasSeg, m.SegBytes = true, 0
		ib.rows = append(ib.rows, kv{key: segmentKey(st.id, m.Seg), val: be64(m.Next)})
		started = &segInfo{seg: m.Seg, first: m.Next}
	}
	base := m.Next
	ib.rows = append(ib.rows, kv{key: entryKey(st.id, m.Seg, base), val: ptr.encode()})
	ib.bytes += int64(ptr.n)
	m.Next += int64(records)
	m.SegBytes += int64(bodyLen)
	m.CumBytes += int64(bodyLen)
	m.CumEntries++
	fe := ib.ends[ptr.file]
	if fe == nil {
		fe = make(map[uint32]int64)
		ib.ends[ptr.file] = fe
	}
	fe[st.id] = m.Next
	return base, started
}

// setMeta records the stream's metadata after the batch's entries.
func (ib *indexBatch) setMeta(st *stream, m streamMeta) {
	ib.metas[st] = m
	ib.written[st] = position{Offset: m.Next, CumBytes: m.CumBytes, CumEntries: m.CumEntries}
}

// merge appends the later batch o to ib.
func (ib *indexBatch) merge(o *indexBatch) {
	if o == nil {
		return
	}
	ib.rows = append(ib.rows, o.rows...)
	ib.posRows = append(ib.posRows, o.posRows...)
	for st, m := range o.metas {
		ib.metas[st] = m // o is later
	}
	for st, p := range o.written {
		if p.Offset >= ib.written[st].Offset {
			ib.written[st] = p
		}
	}
	for f, m := range o.ends {
		fe := ib.ends[f]
		if fe == nil {
			fe = make(map[uint32]int64)
			ib.ends[f] = fe
		}
		for sid, end := range m {
			fe[sid] = max(fe[sid], end)
		}
	}
	if o.cp.file > ib.cp.file || o.cp.file == ib.cp.file && o.cp.pos > ib.cp.pos {
		ib.cp = o.cp
	}
	ib.late = append(ib.late, o.late...)
	ib.bytes += o.bytes
}

// writeIndex writes ib's rows. They go in as few transactions as badger
// allows, in order, file ends first and the stream metadata and checkpoint
// last: a crash between two of them leaves rows whose checkpoint is older,
// which recovery writes again. Indexer (or recovery) only.
func (w *WAL) writeIndex(ib *indexBatch) error {
	if h := w.faults.Load(); h != nil && h.index != nil {
		if err := h.index(); err != nil {
			return err
		}
	}
	txn := w.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	var keys, est int64
	set := func(k, v []byte, del bool) error {
		if keys+8 > w.db.MaxBatchCount()/2 || est+4096 > w.db.MaxBatchSize()/2 {
			if err := w.commitTxn(txn); err != nil {
				return err
			}
			txn = w.db.NewTransaction(true)
			keys, est = 0, 0
		}
		keys++
		est += int64(len(k)+len(v)) + 10
		if del {
			return txn.Delete(k)
		}
		return txn.Set(k, v)
	}
	// File ends first: one that lands without the rows after it only
	// keeps a file longer.
	for f, m := range ib.ends {
		for sid, end := range m {
			if err := set(fileEndKey(f, sid), be64(end), false); err != nil {
				return err
			}
		}
	}
	for _, r := range ib.rows {
		if err := set(r.key, r.val, r.del); err != nil {
			return err
		}
	}
	for _, r := range ib.posRows {
		if err := set(r.key, r.val, r.del); err != nil {
			return err
		}
	}
	for st, m := range ib.metas {
		if err := set(sidKey(tagMeta, st.id), m.encode(), false); err != nil {
			return err
		}
	}
	if ib.cp.file != 0 {
		if err := set(checkpointKey, ib.cp.encode(), false); err != nil {
			return err
		}
	}
	if err := w.commitTxn(txn); err != nil {
		return fmt.Errorf("cannot write the index: %w", err)
	}
	return nil
}

// publish makes what ib indexed visible: file ends for reclaim, stream
// ends for readers.
func (w *WAL) publish(ib *indexBatch) {
	w.data.noteEnds(ib.ends)
	for st, p := range ib.written {
		st.mu.Lock()
		if p.Offset > st.readable.Offset {
			st.readable = p
			close(st.wake)
			st.wake = make(chan struct{})
		}
		st.mu.Unlock()
	}
}

// loadFrameEntry reads and checks the entry an index value points to. The
// frame is read into a buffer from frames, or a new one if frames is nil;
// the entry's Data points into it.
func (w *WAL) loadFrameEntry(sid uint32, off int64, val []byte, frames *framePool) (*storedEntry, int, error) {
	ptr, err := decodeDataPtr(val)
	if err != nil {
		return nil, 0, err
	}
	buf := frames.get(int(ptr.n))
	h, body, err := w.data.readFrame(ptr, buf.bytes())
	if err != nil {
		frames.put(buf)
		return nil, 0, err
	}
	se, err := checkFrameEntry(sid, off, h, body)
	if err != nil {
		frames.put(buf)
		return nil, 0, err
	}
	se.frame = buf
	return se, len(body), nil
}

// checkFrameEntry decodes the entry in the frame of header h and body and
// checks that it is the one of stream sid at offset off.
func checkFrameEntry(sid uint32, off int64, h frameHeader, body []byte) (*storedEntry, error) {
	if h.sid != sid {
		return nil, fmt.Errorf("frame of stream %d under stream %d: %w", h.sid, sid, ErrCorrupt)
	}
	se, err := decodeEntry(body)
	if err != nil {
		return nil, err
	}
	if se.Entry.BaseOffset != off || se.Entry.Records <= 0 {
		return nil, fmt.Errorf("%w: entry says offset %d/%d records under key offset %d", ErrCorrupt, se.Entry.BaseOffset, se.Entry.Records, off)
	}
	return se, nil
}

// itemEntry is loadFrameEntry for an 'e' item of an iterator.
func (w *WAL) itemEntry(item *badger.Item, frames *framePool) (*storedEntry, int, error) {
	sid, _, off, ok := parseEntryKey(item.Key())
	if !ok {
		return nil, 0, fmt.Errorf("entry key %x: %w", item.Key(), ErrCorrupt)
	}
	val, err := item.ValueCopy(nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: reading index value: %w", ErrCorrupt, err)
	}
	return w.loadFrameEntry(sid, off, val, frames)
}

// entryIterator iterates over stream sid's index rows ('e' sid prefix);
// reverse goes newest first. The caller seeks and closes it.
func entryIterator(txn *badger.Txn, sid uint32, reverse bool) (*badger.Iterator, []byte) {
	opt := badger.DefaultIteratorOptions
	opt.Reverse = reverse
	opt.PrefetchValues = false
	prefix := sidKey(tagEntry, sid)
	opt.Prefix = prefix
	return txn.NewIterator(opt), prefix
}

// entriesFrom returns an iterator over stream sid's index rows positioned
// at offset off of segment seg (or the first row after it), and their
// prefix (iterate while it.ValidForPrefix(prefix)). The caller closes it.
func entriesFrom(txn *badger.Txn, sid uint32, seg uint64, off int64) (*badger.Iterator, []byte) {
	it, prefix := entryIterator(txn, sid, false)
	it.Seek(entryKey(sid, seg, off))
	return it, prefix
}

// entriesFromEnd returns an iterator over stream sid's index rows, newest
// first, positioned at the last one, and their prefix. The caller closes
// it.
func entriesFromEnd(txn *badger.Txn, sid uint32) (*badger.Iterator, []byte) {
	it, prefix := entryIterator(txn, sid, true)
	it.Seek(append(slices.Clone(prefix), 0xff))
	return it, prefix
}
