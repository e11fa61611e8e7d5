package wal

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Delivered spans. A stream's committed position passes only entries
// delivered in order, but its writer may know of entries further on that
// are delivered: the answered PutLogs after one still in flight, or what a
// head reader's writer delivered while the backlog drains (head.go). A
// reader records those with MarkDelivered; the WAL keeps them with the
// position (one 'q' row per stream, written with the next group, as
// CommitAsync), and Read flags entries inside them Delivered — also after
// a crash and restart — so they are not delivered again. A span is
// forgotten once the committed position passes it.

// span is a range [from, to) of offsets of delivered entries past the
// stream's committed position.
type span struct{ from, to int64 }

// MarkDelivered records that the entries in [from, to) are delivered
// though the stream's position has not passed them; from and to must be
// entry boundaries. It is queued and written with the WAL's next group,
// without waiting (errors are not reported: a span not written only costs
// sending its entries again after a crash). Any reader of the stream may
// call it, a head reader too.
func (r *Reader) MarkDelivered(from, to int64) error {
	if r.closed {
		return ErrClosed
	}
	st := r.st
	st.mu.Lock()
	if to <= from || to <= st.committed.Offset {
		st.mu.Unlock()
		return nil
	}
	st.spans = addSpan(st.spans, span{max(from, st.committed.Offset), to})
	st.mu.Unlock()
	r.w.enqueue(&request{kind: reqCommit, st: st, spansOnly: true, lazy: true, errc: make(chan error, 1)})
	return nil
}

// addSpan inserts s into the sorted, disjoint spans, merging those it
// overlaps or touches.
func addSpan(spans []span, s span) []span {
	i := 0
	for i < len(spans) && spans[i].to < s.from {
		i++
	}
	j := i
	for j < len(spans) && spans[j].from <= s.to {
		s.from, s.to = min(s.from, spans[j].from), max(s.to, spans[j].to)
		j++
	}
	return slices.Replace(spans, i, j, s)
}

// trimSpans drops what of spans lies below off.
func trimSpans(spans []span, off int64) []span {
	i := 0
	for i < len(spans) && spans[i].to <= off {
		i++
	}
	spans = slices.Delete(spans, 0, i)
	if len(spans) > 0 && spans[0].from < off {
		spans[0].from = off
	}
	return spans
}

// delivered reports whether the entry [off, end) lies inside one of spans.
func delivered(spans []span, off, end int64) bool {
	for _, s := range spans {
		if s.from <= off && end <= s.to {
			return true
		}
	}
	return false
}

// spansRow returns the 'q' row of st after a commit at committed (-1: at
// its committed position), trimming its spans to it: the spans to set, or
// del when the row must go; ok false when there is nothing to write.
// Committer only.
func (st *stream) spansRow(committed int64) (key, val []byte, del, ok bool) {
	st.mu.Lock()
	if committed < 0 {
		committed = st.committed.Offset
	}
	st.spans = trimSpans(st.spans, committed)
	spans := st.spans
	if len(spans) == 0 {
		st.mu.Unlock()
		if !st.spansStored {
			return nil, nil, false, false
		}
		st.spansStored = false
		return sidKey(tagSpans, st.id), nil, true, true
	}
	val = make([]byte, 0, 16*len(spans))
	for _, s := range spans {
		val = binary.BigEndian.AppendUint64(val, uint64(s.from))
		val = binary.BigEndian.AppendUint64(val, uint64(s.to))
	}
	st.mu.Unlock()
	st.spansStored = true
	return sidKey(tagSpans, st.id), val, false, true
}

func decodeSpans(b []byte) ([]span, error) {
	if len(b)%16 != 0 {
		return nil, fmt.Errorf("delivered spans are %d bytes, not pairs of offsets: %w", len(b), ErrCorrupt)
	}
	spans := make([]span, 0, len(b)/16)
	for ; len(b) > 0; b = b[16:] {
		spans = append(spans, span{int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))})
	}
	return spans, nil
}
