package wal

import (
	"encoding/binary"
	"fmt"
)

// EntryHead is the start of a stored entry, as Tail returns it.
type EntryHead struct {
	BaseOffset int64
	Records    int32
	Magic      int8
	JSON       bool // Entry.JSON
	// Head is the first bytes of the entry's Data (at most the headBytes
	// Tail was given; fewer for a shorter batch).
	Head []byte
}

// tailPrefix is how much of a frame Tail reads at first: the frame and
// entry headers and the usual producer address, client id and key id. A
// longer entry start is read whole.
const tailPrefix = 1024

// Tail returns the last n entries of stream k (oldest first), only their
// start: what the engine needs to know which idempotent producer batches
// it stored before a restart (the producer ID, epoch and sequence sit in a
// RecordBatch's first 61 bytes), without reading whole batches. Entries
// that cannot be read are left out; it is a hint, not delivery. It returns
// ErrNotFound for an unknown stream. Safe for concurrent use.
func (w *WAL) Tail(k StreamKey, n, headBytes int) ([]EntryHead, error) {
	st := w.lookup(k)
	if st == nil {
		return nil, fmt.Errorf("stream %v: %w", k, ErrNotFound)
	}
	if !w.acquireDB() {
		return nil, ErrClosed
	}
	defer w.releaseDB()
	st.mu.Lock()
	limit := st.readable.Offset
	st.mu.Unlock()
	txn := w.db.NewTransaction(false)
	defer txn.Discard()
	it, prefix := entriesFromEnd(txn, st.id)
	defer it.Close()
	var out []EntryHead
	// Entries below the last readable ones whose files reclaim deleted
	// fail one after the other: stop after n failures in a row rather than
	// walk a whole index segment.
	failed := 0
	for ; it.ValidForPrefix(prefix) && len(out) < n && failed < n; it.Next() {
		_, _, off, ok := parseEntryKey(it.Item().Key())
		if !ok || off >= limit {
			continue
		}
		val, err := it.Item().ValueCopy(nil)
		if err != nil {
			failed++
			continue
		}
		ptr, err := decodeDataPtr(val)
		if err != nil {
			failed++
			continue
		}
		h, ok := w.entryHead(st.id, off, ptr, headBytes)
		if !ok {
			failed++
			continue
		}
		out = append(out, h)
		failed = 0
	}
	// Oldest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// entryHead reads the start of the entry ptr points to.
func (w *WAL) entryHead(sid uint32, off int64, ptr dataPtr, headBytes int) (EntryHead, bool) {
	n := min(ptr.n, uint32(frameHeaderLen+tailPrefix+headBytes))
	b, err := w.data.readPrefix(ptr, n)
	if err != nil {
		return EntryHead{}, false
	}
	h, ok := decodeEntryHead(b[frameHeaderLen:], headBytes)
	if !ok && n < ptr.n {
		// A long client id or producer address: read it all.
		if b, err = w.data.readPrefix(ptr, ptr.n); err != nil {
			return EntryHead{}, false
		}
		h, ok = decodeEntryHead(b[frameHeaderLen:], headBytes)
	}
	if !ok || h.BaseOffset != off {
		return EntryHead{}, false
	}
	if fh, err := decodeFrameHeader(b); err != nil || fh.sid != sid {
		return EntryHead{}, false
	}
	return h, true
}

// decodeEntryHead reads the fields of a stored entry's encoding (codec.go)
// up to the first headBytes of its data, from a prefix of it (the checksum,
// which covers the whole entry, cannot be checked).
func decodeEntryHead(b []byte, headBytes int) (EntryHead, bool) {
	const fixed = 1 + 4 + 8 + 4 + 3 + 8 + 8 + 8
	if len(b) < fixed || b[0] != codecVersion {
		return EntryHead{}, false
	}
	h := EntryHead{
		BaseOffset: int64(binary.BigEndian.Uint64(b[5:])),
		Records:    int32(binary.BigEndian.Uint32(b[13:])),
		Magic:      int8(b[17]),
		JSON:       b[19]&flagJSON != 0,
	}
	p := b[fixed:]
	var err error
	for range 3 { // producer, client id, access key id
		if _, p, err = readString(p); err != nil {
			return EntryHead{}, false
		}
	}
	if len(p) < 8 {
		return EntryHead{}, false
	}
	p = p[8:] // credential hash
	dataLen, w := binary.Uvarint(p)
	if w <= 0 {
		return EntryHead{}, false
	}
	p = p[w:]
	want := min(uint64(headBytes), dataLen)
	if uint64(len(p)) < want {
		return EntryHead{}, false
	}
	h.Head = append([]byte(nil), p[:want]...)
	return h, true
}
