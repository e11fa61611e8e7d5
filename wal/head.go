package wal

import (
	"errors"
	"fmt"
)

// A stream's reader can split off a head reader when it is far behind
// (after an outage of SLS): the head reader reads from the end of what is
// readable at the split, so that fresh entries are delivered alongside the
// backlog; the reader reads the backlog up to where the head reader
// started (ErrHeadReached), commits there and hands over (HandOver): the
// head reader becomes the stream's reader and commits from then on. Until
// then only the reader's position is committed: a crash or stop during
// the drain sends again what the head reader delivered.

// ErrHeadReached is Read's answer once a reader that split off a head
// reader reached where that one started.
var ErrHeadReached = errors.New("wal: reader reached where its head reader started")

// SplitHead opens a head reader of r's stream, starting at the end of what
// is readable now, and returns it with that offset; r then reads only up
// to it (it may be there already: then its entries returned so far are the
// backlog). A stream has at most one head reader. The head reader is used by
// one goroutine, as any Reader; r and it may be used at the same time.
func (r *Reader) SplitHead() (*Reader, int64, error) {
	if r.closed {
		return nil, 0, ErrClosed
	}
	st := r.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.reader != r || st.head != nil || r.limit > 0 {
		return nil, 0, fmt.Errorf("wal: stream %v: a head reader is already split off", st.key)
	}
	// The reader's entries returned so far are the backlog, at least:
	// readable is never behind its cursor.
	from := st.readable
	h := &Reader{w: r.w, st: st, cursor: from.Offset, start: &from}
	st.head = h
	r.limit = from.Offset
	return h, from.Offset, nil
}

// HandOver makes head, split off r, the stream's reader, once r committed
// (with Commit, not CommitAsync) up to where head started; r is closed.
func (r *Reader) HandOver(head *Reader) error {
	st := r.st
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case st.reader != r || st.head != head: // also once head is closed
		return fmt.Errorf("wal: stream %v: HandOver to a reader not split off this one", st.key)
	case st.committed.Offset != r.limit:
		return fmt.Errorf("wal: stream %v: HandOver at %d before the backlog is committed up to %d", st.key, st.committed.Offset, r.limit)
	}
	st.reader, st.head = head, nil
	r.closed = true
	return nil
}

// Primary reports whether r is the stream's reader, the one that commits
// (not a head reader before HandOver).
func (r *Reader) Primary() bool {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	return r.st.reader == r
}
