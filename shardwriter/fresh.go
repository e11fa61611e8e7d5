package shardwriter

import (
	"context"
	"errors"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// Fresh logs first. A writer that reads entries older than FreshAfter is
// behind (SLS was out, or the relay restarted with a backlog): it splits
// off a fresh writer, which delivers from the end of what the WAL held at
// that moment, so the newest logs reach SLS within seconds, while it
// drains the backlog with what the shard's pacer leaves (the fresh writer
// takes its share first). SLS indexes logs by __time__, so the two need no
// order between them. When the backlog writer reaches where the fresh one
// started it commits there and hands the stream over: the fresh writer
// commits from then on. Until the hand-over only the backlog's position is
// committed; the fresh writer marks what it delivered
// (wal.Reader.MarkDelivered), so that after a crash or stop during a drain
// the backlog's reader skips it.

// maybeSplit splits off a fresh writer when the entries just read are
// older than FreshAfter.
func (w *writer) maybeSplit(entries []*wal.Entry) {
	if w.fresh != nil || w.isFresh || w.s.opts.FreshAfter < 0 || len(entries) == 0 {
		return
	}
	age := time.Since(time.Unix(0, entries[0].ReceivedAt))
	if age < w.s.opts.FreshAfter {
		return
	}
	head, from, err := w.r.SplitHead()
	if err != nil {
		w.log.Error("cannot split off a writer of fresh logs", "err", err)
		return
	}
	f := newWriter(w.s, w.key, head)
	f.pace, f.slots, f.isFresh, f.committed, f.marked = w.pace, w.slots, true, from, from
	w.fresh, w.freshFrom = f, from
	w.log.Info("writer behind: fresh logs go out alongside the backlog", "behind", age.Round(time.Second),
		"backlog_from", entries[0].BaseOffset, "fresh_from", from)
	w.s.wg.Add(1)
	go func() {
		defer w.s.wg.Done()
		f.run(w.s.ctx)
		_ = head.Close()
	}()
}

// behind reports whether w is a fresh writer before the hand-over.
func (w *writer) behind() bool {
	if w.isFresh && w.r.Primary() {
		w.isFresh = false
	}
	return w.isFresh
}

// handOver ends the backlog: it sends what is carried over, waits for the
// answers of what is in flight, commits up to
// where the fresh writer started and hands the stream over to it.
func (w *writer) handOver(ctx context.Context) {
	if err := w.drain(ctx); err != nil {
		return
	}
	for {
		err := w.r.Commit(w.freshFrom)
		if err == nil {
			err = w.r.HandOver(w.fresh.r)
		}
		if err == nil {
			w.log.Info("backlog delivered; the fresh writer goes on alone", "at", w.freshFrom)
			return
		}
		if errors.Is(err, wal.ErrClosed) {
			return
		}
		w.log.Error("cannot hand the stream over to the fresh writer", "err", err)
		if !sleepCtx(ctx, w.s.opts.RetryInterval) {
			return
		}
	}
}
