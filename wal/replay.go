package wal

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dgraph-io/badger/v4"
)

// replay, at Open, indexes the frames written after the checkpoint: those
// whose index rows a crash kept from badger. It reads only that tail, not
// the backlog: at most what was indexed since the index was last synced
// (indexSyncBytes, indexSyncEvery) plus what was in flight.
//
// A frame is indexed unless the index has it already (see replayFrame). A
// file is read up to its first bad frame — a torn write — and cut there;
// nothing is ever appended to it again (appends go to a new file).
func (w *WAL) replay() error {
	ib := newIndexBatch()
	// Deletes first: a row placed again below must not be deleted after.
	for _, k := range w.staleRows {
		ib.rows = append(ib.rows, kv{key: k, del: true})
	}
	cp := w.checkpoint
	skipped := 0
	for _, num := range w.data.nums() {
		if num < cp.file {
			continue
		}
		from := int64(0)
		if num == cp.file {
			from = cp.pos
		}
		n, err := w.replayFile(w.data.files[num], from, ib)
		if err != nil {
			return err
		}
		skipped += n
	}
	if skipped > 0 {
		w.log.Warn("wal: frames of unknown streams after the checkpoint not indexed (their stream was never stored, so they were never acknowledged)", "dir", w.dir, "frames", skipped)
	}
	if ib.empty() && ib.cp == w.checkpoint {
		return nil
	}
	if err := w.writeIndex(ib); err != nil {
		return err
	}
	if err := w.db.Sync(); err != nil {
		return fmt.Errorf("cannot sync the index: %w", err)
	}
	w.data.noteEnds(ib.ends)
	if len(ib.rows) > 0 {
		w.log.Info("wal: indexed frames written before a crash", "dir", w.dir, "streams", len(ib.metas), "rows", len(ib.rows))
	} // else only the checkpoint moved (every data file had been reclaimed): nothing to report
	return nil
}

// replayFile indexes the frames of f from position from on, cutting the
// file at its first bad frame. It returns how many good frames it skipped.
func (w *WAL) replayFile(f *dataFile, from int64, ib *indexBatch) (skipped int, err error) {
	fd, err := os.OpenFile(f.path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("cannot open %q: %w", f.path, err)
	}
	defer fd.Close()
	fi, err := fd.Stat()
	if err != nil {
		return 0, fmt.Errorf("cannot stat %q: %w", f.path, err)
	}
	size := fi.Size()
	pos := from
	hdr := make([]byte, frameHeaderLen)
	var body []byte
	var bad error
	for pos < size {
		if _, err := fd.ReadAt(hdr, pos); err != nil {
			bad = fmt.Errorf("frame header: %w", err)
			break
		}
		h, err := decodeFrameHeader(hdr)
		if err != nil {
			bad = err
			break
		}
		if int64(h.bodyLen) > size-pos-frameHeaderLen {
			bad = fmt.Errorf("frame of %d bytes runs past the end of the file", h.bodyLen)
			break
		}
		body = body[:0]
		body = append(body, make([]byte, h.bodyLen)...)
		if _, err := fd.ReadAt(body, pos+frameHeaderLen); err != nil && !errors.Is(err, io.EOF) {
			bad = fmt.Errorf("frame body: %w", err)
			break
		}
		se, err := decodeEntry(body)
		if err != nil {
			bad = err
			break
		}
		ptr := dataPtr{file: f.num, pos: pos, n: uint32(frameHeaderLen + len(body))}
		pos += int64(ptr.n)
		if !w.replayFrame(ib, h, se, ptr) {
			skipped++
		}
	}
	if bad != nil {
		w.log.Warn("wal: torn data file cut at its first bad frame", "file", f.path, "at", pos, "bytes", size-pos, "err", bad)
		if err := fd.Truncate(pos); err != nil {
			return skipped, fmt.Errorf("cannot cut %q at %d: %w", f.path, pos, err)
		}
		if err := fd.Sync(); err != nil {
			return skipped, fmt.Errorf("cannot sync %q: %w", f.path, err)
		}
	}
	if pos > from || ib.cp.file < f.num {
		ib.cp = dataPos{file: f.num, pos: pos}
	}
	return skipped, nil
}

// replayFrame indexes one frame unless the index has it. It returns false
// for a frame no stream owns. A frame the index has still counts towards
// its file's ends: a crash can keep the stream's metadata and lose the
// file's end row, and reclaim must not delete the file under it.
//
// A frame past the stream's next offset (a gap: the frames between were
// lost with a torn or failed write) is indexed too. It may never have been
// acknowledged — an acknowledgement waits for a sync covering everything
// written before it, in that file — but after a failed sync the relay
// moves to a new file and acknowledges there, past frames that may be
// gone; delivering an unacknowledged batch costs a duplicate, skipping an
// acknowledged one would lose it. Readers report the gap.
func (w *WAL) replayFrame(ib *indexBatch, h frameHeader, se *storedEntry, ptr dataPtr) bool {
	st := w.streams.byID[h.sid]
	if st == nil {
		// Its id must not go to a new stream: a later replay would
		// index these frames into it.
		w.streams.nextID = max(w.streams.nextID, h.sid)
		return false
	}
	end := se.Entry.BaseOffset + int64(se.Entry.Records)
	if se.Entry.BaseOffset < st.meta.Next {
		fe := ib.ends[ptr.file]
		if fe == nil {
			fe = make(map[uint32]int64)
			ib.ends[ptr.file] = fe
		}
		fe[st.id] = max(fe[st.id], min(end, st.meta.Next))
		return true
	}
	if se.Entry.BaseOffset > st.meta.Next {
		w.log.Warn("wal: offsets missing before a frame found at recovery", "stream", st.key, "from", st.meta.Next, "to", se.Entry.BaseOffset)
		st.meta.Next = se.Entry.BaseOffset
		st.meta.CumBytes, st.meta.CumEntries = se.CumBytes, se.CumEntries
	}
	m := &st.meta
	_, seg := ib.place(st, m, se.Entry.Records, int(ptr.n)-frameHeaderLen, ptr, w.opts.SegmentBytes)
	if seg != nil {
		st.segs = append(st.segs, *seg)
	}
	ib.setMeta(st, *m)
	if h.deadID != 0 {
		// The dead letter was replayed into this frame; its row goes
		// with the index row, as it would have without the crash.
		err := w.db.View(func(txn *badger.Txn) error {
			_, err := txn.Get(deadKey(h.deadID))
			return err
		})
		if err == nil {
			ib.rows = append(ib.rows, kv{key: deadKey(h.deadID), del: true})
			w.dead.count--
		}
	}
	return true
}
