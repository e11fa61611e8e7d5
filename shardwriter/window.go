package shardwriter

import (
	"context"
	"slices"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// Several PutLogs in flight per shard. A writer hands each LogGroup it
// built to a sender goroutine of its own (dispatch) and goes on reading and
// converting, up to Options.RequestsInFlight LogGroups not yet reaped: a
// shard is not held to one request per round trip to SLS. The writer
// reaps the answers in the order the LogGroups were built (reap), so the
// committed position passes only a contiguous prefix of answered ones: a
// request that fails is retried by its own sender, those after it that SLS
// took stay answered — not sent again, not forgotten — and the position
// waits for it; the entries of those answered behind it are marked
// delivered in the WAL (markAnswered). After a crash, then, only the
// LogGroups not answered are sent again — at most RequestsInFlight — with
// the logs sent before of the entries they are part of.
//
// SLS stores each PutLogs when it comes, so LogGroups of a shard in flight
// together may be stored in another order than they were read. SLS indexes
// logs by __time__, which the relay sets from each record; only a
// consumer reading the shard by cursor (PullLogs) sees the order of
// arrival, as it does with any client that sends in parallel.

// A writer's window bounds its own LogGroups not yet reaped; while a
// backlog drains beside fresh logs (fresh.go) the stream has two writers,
// and the PutLogs they send share the stream's slots (takeSlot), so that
// the shard still has at most RequestsInFlight in flight and a crash
// sends again at most that many. A slot is held only for the request
// itself, not while its sender waits for the pacer or a back-off: the
// fresh writer's requests do not queue behind backlog requests the pacer
// holds back.

// takeSlot waits for a free slot of the stream for one PutLogs, which
// gives it back (<-w.slots) once answered; false if ctx ended first.
// Called by the senders.
func (w *writer) takeSlot(ctx context.Context) bool {
	select {
	case w.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// putRequest is one LogGroup handed to a sender: its logs, the entries
// they came from, and, once done is closed, the outcome. The sender owns
// the request until it closes done; the writer after.
type putRequest struct {
	g     *LogGroupBuilder
	group []*wal.Entry // the entries with logs in g, in order
	cred  wal.Credential
	// fresh marks a request of a fresh writer before the hand-over: it
	// goes ahead of the backlog in the shard's pacer (paceWait).
	fresh bool
	raw   []byte // a LogGroup of some of g's logs (logBytes)
	// refused are the logs of g SLS refused for good (sendLogs).
	refused []refusedLog
	// marked: its entries delivered past the first LogGroup not answered
	// are marked so (markAnswered).
	marked bool
	// err is ctx's error when the writer stopped before SLS took or
	// refused every log; nil once all are answered.
	err  error
	done chan struct{}
}

// logBytes returns the LogGroup of logs i to j-1 of req's group, with the
// LogGroup metadata of o. It is valid until the next call.
func (req *putRequest) logBytes(i, j int, o *Options) []byte {
	if i == 0 && j == req.g.Logs() {
		return req.g.Bytes(o.Topic, o.Source, nil)
	}
	req.raw = req.g.appendRange(req.raw[:0], i, j, o.Topic, o.Source, nil)
	return req.raw
}

// answered reports whether req's sender is done with it.
func (req *putRequest) answered() bool {
	select {
	case <-req.done:
		return true
	default:
		return false
	}
}

// dispatch hands the LogGroup being built (w.g, its entries w.group) to a
// sender, after waiting for room in the window, and leaves w.g empty (its
// attribution kept: the logs that follow a flush in the middle of an entry
// are of the same producer). It fails only if ctx ends first.
func (w *writer) dispatch(ctx context.Context) error {
	if w.g.Logs() == 0 {
		return nil
	}
	for len(w.window) >= max(1, w.s.opts.RequestsInFlight) {
		<-w.window[0].done
		if err := w.reap(ctx); err != nil {
			return err
		}
	}
	req := w.newRequest()
	req.g.takeLogs(w.g)
	req.group, w.group = w.group, req.group
	req.cred, req.fresh = w.cred, w.behind()
	w.window = append(w.window, req)
	go func() {
		req.err = w.sendLogs(ctx, req, 0, req.g.Logs())
		w.endProbe(req)
		close(req.done)
		w.wake()
	}()
	return nil
}

// newRequest returns an empty request, reused if one is free.
func (w *writer) newRequest() *putRequest {
	var req *putRequest
	if n := len(w.free); n > 0 {
		req, w.free = w.free[n-1], w.free[:n-1]
	} else {
		req = &putRequest{g: NewLogGroupBuilder(w.s.opts.LogGroup)}
	}
	req.done, req.marked = make(chan struct{}), false
	return req
}

// reap takes the answered requests at the front of the window out, in
// order: it moves the logs SLS refused to dead letters and commits the
// position past them. It stops at the first request not answered, and
// fails with the error of one its sender gave up on (ctx ended), or if
// ctx ends first.
func (w *writer) reap(ctx context.Context) error {
	n := 0
	for len(w.window) > 0 && w.window[0].answered() {
		req := w.window[0]
		if req.err != nil {
			// Its sender gave up (a stop): those answered behind it are
			// marked all the same, or a restart would send them again.
			w.markAnswered()
			return req.err
		}
		if err := w.deadLetterRefused(ctx, req); err != nil {
			return err
		}
		w.window[0] = nil
		w.window = w.window[1:]
		req.g.Reset()
		clear(req.group)
		req.group = req.group[:0]
		w.free = append(w.free, req)
		n++
	}
	if n > 0 || len(w.window) == 0 {
		w.commit(w.donePos())
	}
	w.markAnswered()
	return nil
}

// markAnswered marks the entries delivered all of whose logs SLS took in
// LogGroups answered after the first one not answered
// (wal.Reader.MarkDelivered): the position cannot pass them yet, and a
// crash must not send them again. A LogGroup with logs SLS refused waits
// for reap (its dead letters).
func (w *writer) markAnswered() {
	for k := 1; k < len(w.window); k++ {
		req := w.window[k]
		if req.marked || !w.answeredOK(k) {
			continue
		}
		req.marked = true
		first, last := 0, len(req.group)-1
		if !w.entryDone(k, req.group[first]) {
			first++
		}
		if last >= first && !w.entryDone(k, req.group[last]) {
			last--
		}
		if last < first {
			continue
		}
		from, to := req.group[first].BaseOffset, req.group[last].BaseOffset+int64(req.group[last].Records)
		if err := w.r.MarkDelivered(from, to); err != nil {
			w.log.Error("cannot mark entries delivered", "err", err)
		}
	}
}

// answeredOK reports whether w.window[k] is answered with all its logs
// taken.
func (w *writer) answeredOK(k int) bool {
	req := w.window[k]
	return req.answered() && req.err == nil && len(req.refused) == 0
}

// entryDone reports whether every LogGroup with logs of e, one of
// w.window[k]'s entries, is answered with all its logs taken: an entry
// spans the LogGroups next to each other that hold it.
func (w *writer) entryDone(k int, e *wal.Entry) bool {
	for i := k - 1; i >= 0 && slices.Contains(w.window[i].group, e); i-- {
		if !w.answeredOK(i) {
			return false
		}
	}
	for i := k + 1; i < len(w.window) && slices.Contains(w.window[i].group, e); i++ {
		if !w.answeredOK(i) {
			return false
		}
	}
	return !slices.Contains(w.group, e)
}

// drain sends the LogGroup being built and waits until every LogGroup in
// flight is answered and reaped. It fails if ctx ends first.
func (w *writer) drain(ctx context.Context) error {
	if err := w.dispatch(ctx); err != nil {
		return err
	}
	for len(w.window) > 0 {
		<-w.window[0].done
		if err := w.reap(ctx); err != nil {
			return err
		}
	}
	return nil
}

// settle, when the writer stops, waits for every sender (they give up at
// once on a stop, but a PutLogs in flight ends only with its answer or its
// timeout) and reaps what was answered before the first that was not
// (with ctx ended, a dead letter is tried once).
func (w *writer) settle(ctx context.Context) {
	for _, req := range w.window {
		<-req.done
	}
	_ = w.reap(ctx)
}

// retryAfter waits before req's sender tries again after a failure that
// time may fix. The first sender of a run of failures (the prober) waits
// its back-off and tries again; the others wait until SLS takes a write,
// or the prober is done with its request, so a shard SLS refuses costs one
// request per back-off, not one per LogGroup in flight. It reports false
// if ctx ended.
func (w *writer) retryAfter(ctx context.Context, req *putRequest, backoff time.Duration) bool {
	w.failMu.Lock()
	if w.prober == nil {
		w.prober = req
	}
	if w.prober == req {
		w.failMu.Unlock()
		return sleepCtx(ctx, backoff)
	}
	probed := w.probed
	w.failMu.Unlock()
	select {
	case <-probed:
		return true
	case <-ctx.Done():
		return false
	}
}

// endProbe, once req's sender is done with it, lets the senders waiting on
// it try again if req was the prober.
func (w *writer) endProbe(req *putRequest) {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	if w.prober == req {
		w.probeDoneLocked()
	}
}

// probeDoneLocked ends the prober's turn: the senders waiting on it try
// again. w.failMu must be held.
func (w *writer) probeDoneLocked() {
	w.prober = nil
	close(w.probed)
	w.probed = make(chan struct{})
}

// wakeOnAnswer arms cancel to be called when a sender is done (nil
// disarms it).
func (w *writer) wakeOnAnswer(cancel context.CancelFunc) {
	w.wakeMu.Lock()
	defer w.wakeMu.Unlock()
	w.wakeRead = cancel
}

// wake tells the writer a sender is done. Called by the senders.
func (w *writer) wake() {
	w.wakeMu.Lock()
	defer w.wakeMu.Unlock()
	if w.wakeRead != nil {
		w.wakeRead()
		w.wakeRead = nil
	}
}

// takeLogs moves the logs of o (with their buffers and attribution) to g,
// which must be empty and have the same limits, and leaves o empty with
// its attribution kept: a Converter that flushes in the middle of an entry
// goes on with the same producer's logs.
func (g *LogGroupBuilder) takeLogs(o *LogGroupBuilder) {
	*g, *o = *o, *g
	o.attr, o.attributed = g.attr, g.attributed
}
