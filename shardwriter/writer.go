package shardwriter

import (
	"context"
	"errors"
	"fmt"
	"github.com/twmb/franz-go/pkg/kerr"
	"log/slog"
	"sync"
	"time"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// writer delivers one WAL stream (a Kafka partition) to its SLS shard. It
// reads entries and converts them into LogGroups; each full LogGroup goes
// to a sender of its own (window.go), up to Options.RequestsInFlight at a
// time, while the writer goes on reading. Answers are taken in the order
// the LogGroups were built, and after each the stream's position is
// committed past the entries whose logs are all answered 200 or moved to
// dead letters (wal.Reader.CommitAsync: queued, not waited for), so that a
// crash sends again only the LogGroups in the window and those already
// sent of the entry the first of them is part of. The writer's fields are
// used by its goroutine alone, but for those of window.go that say
// otherwise.
type writer struct {
	s    *Service
	key  wal.StreamKey
	r    *wal.Reader
	conv *Converter
	g    *LogGroupBuilder
	pace *pacer // the shard's
	// projectPace is the project's, shared with its other writers; nil
	// with fixed pacing.
	projectPace *pacer
	log         *slog.Logger

	// group holds the entries with logs in g.
	group []*wal.Entry
	cred  wal.Credential
	// groupSince is when the first log of w.g was added: a LogGroup that
	// is not full is carried over from read to read until Linger after.
	groupSince time.Time
	// handled is the offset after the last entry read whose logs are all
	// in LogGroups (answered, in flight or in g), or that needed none
	// (delivered by the write proof, dead-lettered): donePos.
	handled int64
	// committed is the last position handed to the reader's commit;
	// marked, of a fresh writer before the hand-over, where it marked
	// entries delivered up to (from where it started).
	committed, marked int64

	// window holds the LogGroups handed to senders, in the order they
	// were built, until reaped (window.go); free holds requests to reuse.
	window []*putRequest
	free   []*putRequest
	// wakeMu protects wakeRead: a sender's answer wakes a read blocked
	// for new entries, so the position is committed at once.
	wakeMu   sync.Mutex
	wakeRead context.CancelFunc

	// slots holds a token for each PutLogs of the stream in flight, at
	// most Options.RequestsInFlight: shared with the fresh writer split
	// off (fresh.go), so that the shard's bound holds during a drain too
	// (window.go, takeSlot). Safe for concurrent use.
	slots chan struct{}

	// fresh is the writer of fresh entries split off this one while it
	// drains a backlog, freshFrom where that one started (fresh.go).
	fresh     *writer
	freshFrom int64
	// isFresh marks a fresh writer before the hand-over: it does not
	// commit, and goes ahead of the backlog in the shard's pacer.
	isFresh bool

	// failMu protects failing, lastCode, prober and probed, which the
	// senders share.
	failMu   sync.Mutex
	failing  bool   // in a run of failed writes; logged once when it starts
	lastCode string // the error code of that run
	// prober is the request whose sender retries with back-off in a run
	// of failures; the others wait until probed closes (retryAfter).
	prober *putRequest
	probed chan struct{}

	dec    batch.Decoder // decodes entries again for dead letters of some records
	deltas []int32
}

func newWriter(s *Service, k wal.StreamKey, r *wal.Reader) *writer {
	return &writer{
		s: s, key: k, r: r,
		conv: NewConverter(s.opts.Convert),
		g:    NewLogGroupBuilder(s.opts.LogGroup),
		pace: newPacer(max(0, s.opts.ShardBytesPerSec), max(0, s.opts.ShardRequestsPerSec), s.opts.Pace == "adaptive"),

		projectPace: s.projectPacer(k.Project),
		log:         s.log.With("stream", streamName(k)),

		committed: r.Committed(),
		handled:   r.Committed(),
		probed:    make(chan struct{}),
		slots:     make(chan struct{}, max(1, s.opts.RequestsInFlight)),
	}
}

func (w *writer) run(ctx context.Context) {
	defer w.stop(ctx)
	for ctx.Err() == nil {
		entries, err := w.read(ctx)
		if errors.Is(err, wal.ErrHeadReached) {
			w.handOver(ctx)
			return
		}
		if errors.Is(err, errAnswered) {
			if w.reap(ctx) != nil {
				return
			}
			continue
		}
		if errors.Is(err, errGroupDue) {
			// The LogGroup carried over from earlier reads waited Linger.
			if err := w.dispatch(ctx); err != nil {
				return
			}
			continue
		}
		if err != nil {
			var ce *wal.CorruptError
			if errors.As(err, &ce) && w.behind() {
				// Only the stream's reader may skip it: the fresh
				// writer waits for the hand-over.
				if !sleepCtx(ctx, w.s.opts.RetryInterval) {
					return
				}
				continue
			}
			if errors.As(err, &ce) {
				// The bytes are gone; nothing can deliver them. Say so
				// loudly, with the offsets lost, and move on — after
				// delivering the entries before them.
				if err := w.drain(ctx); err != nil {
					return
				}
				w.log.Error("skipping corrupt WAL entry", "offset", ce.Offset, "next", ce.Next, "err", ce.Err)
				if err := w.r.Commit(ce.Next); err != nil {
					// The same entry comes back from the next Read: tried
					// again after the retry interval, not in a loop that
					// floods the log while the WAL's index write fails.
					w.log.Error("cannot commit WAL position", "err", err)
					if !sleepCtx(ctx, w.s.opts.RetryInterval) {
						return
					}
				} else {
					w.committed = max(w.committed, ce.Next)
					w.handled = max(w.handled, ce.Next)
				}
				continue
			}
			if ctx.Err() == nil && !errors.Is(err, wal.ErrClosed) {
				w.log.Error("cannot read WAL", "err", err)
				sleepCtx(ctx, w.s.opts.RetryInterval)
				continue
			}
			return
		}
		w.maybeSplit(entries)
		if !w.deliver(ctx, entries) {
			return
		}
		// Everything read is handed to senders, dead-lettered, or
		// delivered by the write proof (skipped), but a LogGroup
		// carried over: commit what is answered.
		if w.reap(ctx) != nil {
			return
		}
	}
}

// stop, when the writer stops, waits for the LogGroups in flight and makes
// the position past those answered durable; the rest comes again.
func (w *writer) stop(ctx context.Context) {
	w.settle(ctx)
	if w.behind() {
		w.commit(w.donePos())
		return
	}
	if pos := max(w.donePos(), w.committed); pos > w.r.Committed() {
		if err := w.r.Commit(pos); err != nil && !errors.Is(err, wal.ErrClosed) {
			w.log.Error("cannot commit WAL position", "err", err)
		}
	}
}

// donePos returns the offset before which every entry read is delivered:
// handled, or the first entry of the oldest LogGroup not reaped, or of the
// one being built, whichever comes first.
func (w *writer) donePos() int64 {
	pos := w.handled
	if len(w.window) > 0 {
		pos = min(pos, w.window[0].group[0].BaseOffset)
	}
	if len(w.group) > 0 {
		pos = min(pos, w.group[0].BaseOffset)
	}
	return pos
}

// commit queues pos as the stream's committed position unless it is not
// past the last one; the WAL writes it with its next group without the
// writer waiting for it. A fresh writer before the hand-over marks what it
// delivered instead (wal.Reader.MarkDelivered), so that a crash during the
// drain does not send it again.
func (w *writer) commit(pos int64) {
	if w.behind() {
		if pos > w.marked {
			if err := w.r.MarkDelivered(w.marked, pos); err != nil {
				w.log.Error("cannot mark entries delivered", "err", err)
				return
			}
			w.marked = pos
		}
		return
	}
	if pos <= w.committed {
		return
	}
	if err := w.r.CommitAsync(pos); err != nil {
		// Tried again with the next answer's position.
		w.log.Error("cannot commit WAL position", "err", err)
		return
	}
	w.committed = pos
}

// readEntries bounds the entries one WAL read returns; ReadBytes is the
// limit that matters, this one only keeps a read of tiny batches short.
const readEntries = 4096

var (
	// errGroupDue is read's answer when the LogGroup carried over from
	// earlier reads has waited Linger and nothing more came.
	errGroupDue = errors.New("shardwriter: the LogGroup being built is due")
	// errAnswered is read's answer when SLS answered a LogGroup in flight
	// while it waited for entries.
	errAnswered = errors.New("shardwriter: a LogGroup in flight was answered")
)

// read returns the next entries. With a LogGroup carried over (deliver), it
// waits only until that group is due (Linger after its first log), then
// returns errGroupDue; with LogGroups in flight, only until one is
// answered (errAnswered).
func (w *writer) read(ctx context.Context) ([]*wal.Entry, error) {
	if w.g.Logs() == 0 && len(w.window) == 0 {
		return w.r.Read(ctx, w.s.opts.ReadBytes, readEntries)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if w.g.Logs() > 0 {
		var cancelDue context.CancelFunc
		rctx, cancelDue = context.WithDeadline(rctx, w.groupSince.Add(max(0, w.s.opts.Linger)))
		defer cancelDue()
	}
	if len(w.window) > 0 {
		// Armed before the look, so that no answer goes unseen.
		w.wakeOnAnswer(cancel)
		defer w.wakeOnAnswer(nil)
		if w.window[0].answered() {
			return nil, errAnswered
		}
	}
	entries, err := w.r.Read(rctx, w.s.opts.ReadBytes, readEntries)
	if err != nil && ctx.Err() == nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return nil, errGroupDue
		case errors.Is(err, context.Canceled):
			return nil, errAnswered
		}
	}
	return entries, err
}

// deliver converts entries and hands every LogGroup that fills up to a
// sender; the last one, not full, is carried over to the next read unless
// it is due. It returns false if ctx ended first.
func (w *writer) deliver(ctx context.Context, entries []*wal.Entry) bool {
	now := time.Now()
	var cur *wal.Entry
	// A flush in the middle of an entry: the entry's remaining logs start
	// the next LogGroup, so it belongs to that one too — and only to that
	// one when none of its logs is in the LogGroup flushed (the first did
	// not fit, or is of another producer).
	flush := func(g *LogGroupBuilder) error {
		if n := g.Logs(); n > 0 && g.refs[n-1].entry != cur {
			w.group = w.group[:len(w.group)-1]
		}
		// dispatch may wait for an answer: not holding a slot.
		releaseCPU()
		err := w.dispatch(ctx)
		acquireCPU()
		if err != nil {
			return err
		}
		w.group = append(w.group, cur)
		w.groupSince = time.Now()
		return nil
	}
	for _, e := range entries {
		end := e.BaseOffset + int64(e.Records)
		if e.Delivered { // sent by the write proof
			w.handled = end
			continue
		}
		if w.g.Logs() > 0 && e.Credential != w.cred {
			if err := w.dispatch(ctx); err != nil {
				return false
			}
		}
		cur, w.cred = e, e.Credential
		if w.g.Logs() == 0 {
			w.groupSince = time.Now()
		}
		w.group = append(w.group, e)
		acquireCPU() // cpuslots.go
		sent, err := w.conv.Convert(w.g, e, now, flush)
		releaseCPU()
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			if errors.Is(err, ErrUndecodable) {
				if n := len(w.group); n > 0 && w.group[n-1] == e {
					w.group = w.group[:n-1]
				}
				reason := err.Error()
				if sent > 0 {
					// The records before the fault cannot be told apart
					// from the rest in a batch that does not decode:
					// say so, since a replay would send them again.
					reason = fmt.Sprintf("%s (its first %d records were delivered before the fault was found)", reason, sent)
				}
				if err := w.deadLetter(ctx, []*wal.Entry{e}, reason); err != nil {
					return false
				}
				w.handled = end
				w.commit(w.donePos())
				continue
			}
			w.log.Error("cannot convert entry", "offset", e.BaseOffset, "err", err)
			return false
		}
		w.handled = end
	}
	// A LogGroup that is not full is carried over to the next read, to
	// be filled up, unless it waited Linger already (read sends it when it
	// does).
	if w.g.Logs() > 0 && (w.s.opts.Linger <= 0 || time.Since(w.groupSince) >= w.s.opts.Linger) {
		if err := w.dispatch(ctx); err != nil {
			return false
		}
	}
	if w.g.Logs() == 0 {
		clear(w.group)
		w.group = w.group[:0]
	}
	return true
}

// sendLogs sends logs i to j-1 of req's LogGroup until SLS takes them, or
// refuses them for good (errorCodes, classify.go): a refused body is split
// in halves, each sent the same way, so that only the logs SLS refuses
// alone are refused and the rest is delivered once; other refusals refuse
// the logs at once. Refused logs are noted in req.refused, for reap to
// make dead letters of. Every attempt first checks the logs' times against
// SLS's clock. It fails only if ctx ends first. Called by req's sender.
func (w *writer) sendLogs(ctx context.Context, req *putRequest, i, j int) error {
	refresh := false
	var backoff time.Duration
	for {
		// A stop ends sending at once: what is not sent comes again.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		retimeForSLS(req.g, w.s.clock)
		raw := req.logBytes(i, j, &w.s.opts)
		if !w.paceWait(ctx, req.fresh, len(raw)) {
			return ctx.Err()
		}
		if !w.takeSlot(ctx) {
			return ctx.Err()
		}
		t0 := time.Now()
		err := w.put(req.cred, raw, refresh)
		slsRequestDuration.UpdateDuration(t0)
		<-w.slots
		if err == nil {
			w.s.stats.LogGroups.Add(1)
			w.s.stats.Logs.Add(int64(j - i))
			w.s.stats.RawBytes.Add(int64(len(raw)))
			w.pace.accepted(len(raw))
			if w.projectPace != nil {
				w.projectPace.accepted(len(raw))
			}
			slsRequestsOK.Inc()
			logsOut.Add(j - i)
			rawBytesOut.Add(len(raw))
			w.recovered(req.cred)
			return nil
		}
		rule, reason := ruleFor(err)
		code := errorCode(err)
		countSLSError(code, rule)
		switch {
		case rule.verdict == split && j-i > 1:
			slsRequestsSplit.Inc()
			mid := i + (j-i)/2
			if err := w.sendLogs(ctx, req, i, mid); err != nil {
				return err
			}
			return w.sendLogs(ctx, req, mid, j)
		case rule.verdict == split || rule.verdict == deadLetter:
			slsRequestsDead.Inc()
			w.refusedKey(rule, req.cred, err)
			for k := i; k < j; k++ {
				req.refused = append(req.refused, refusedLog{k, reason})
			}
			return nil
		}
		w.refusedKey(rule, req.cred, err)
		w.s.stats.Retries.Add(1)
		slsRequestsRetried.Inc()
		if rule == ruleQuota && w.projectPace != nil && w.quotaAnswer(err) {
			// Adaptive pacing: the pacer slows down, and the retry waits
			// for it rather than for a back-off.
			continue
		}
		w.failed(req.cred, code, reason)
		refresh = rule.verdict == refreshRetry
		backoff = w.s.opts.nextBackoff(backoff)
		if !w.retryAfter(ctx, req, backoff) {
			return ctx.Err()
		}
	}
}

// paceWait waits until the shard's and the project's pacers let a request
// of n bytes go; false if ctx ended. A fresh writer's request (before the
// hand-over) takes its share without waiting.
func (w *writer) paceWait(ctx context.Context, fresh bool, n int) bool {
	if fresh && !w.r.Primary() {
		w.pace.charge(n) // fresh logs first: the backlog gets what is left
	} else if !w.pace.wait(ctx, n) {
		return false
	}
	return w.projectPace == nil || w.projectPace.wait(ctx, n)
}

// refusedKey tells the catalog when SLS refused the entries' key, for good
// (write denied, key gone) or for now (disabled, STS token expired,
// project forbidden): new Produce requests with it get
// TOPIC_AUTHORIZATION_FAILED at once, and its next batch must prove the
// key again before it is acknowledged, so nothing SLS would refuse is
// acknowledged meanwhile.
//
// It also tells the catalog when SLS said the Project or Logstore is gone
// (404 ProjectNotExist, LogStoreNotExist), so new Produce requests for it
// get UNKNOWN_TOPIC_OR_PARTITION rather than the cached shard list.
func (w *writer) refusedKey(rule errorRule, cred wal.Credential, err error) {
	switch {
	case rule.kafka == kerr.TopicAuthorizationFailed:
		w.s.catalog.WriteDenied(w.key.Project, w.key.Logstore, cred, err)
	case rule == ruleNotExist:
		w.s.catalog.logstoreGone(storeKey{w.key.Project, w.key.Logstore})
	}
}

// nextBackoff returns how long to wait before the next retry of a run of
// failures, given the last wait (0 at the first failure): RetryInterval,
// doubling at each failure up to MaxRetryInterval.
func (o *Options) nextBackoff(last time.Duration) time.Duration {
	if last == 0 {
		return o.RetryInterval
	}
	return min(2*last, max(o.MaxRetryInterval, o.RetryInterval))
}

// put sends one PutLogs body signed with cred. Safe for concurrent use.
func (w *writer) put(cred wal.Credential, raw []byte, refresh bool) error {
	hashKey, err := w.s.catalog.routeKey(w.key.Project, w.key.Logstore, w.key.Partition, cred, refresh)
	if err != nil {
		return err
	}
	return w.s.clients.putLogs(&w.s.opts, cred, w.key.Project, w.key.Logstore, hashKey, raw)
}

// refusedLog is a log of a request's LogGroup that SLS refused, and SLS's reason.
type refusedLog struct {
	index  int
	reason string
}

// deadLetterRefused moves the records of the logs in req.refused to dead
// letters, one per entry and reason: an entry all of whose records were
// refused as it is stored, others as a new entry of just those records
// (entryOfRecords), so that a replay sends again exactly what SLS refused.
// It fails only if ctx ends first.
func (w *writer) deadLetterRefused(ctx context.Context, req *putRequest) error {
	refused, refs := req.refused, req.g.refs
	for len(refused) > 0 {
		e, reason := refs[refused[0].index].entry, refused[0].reason
		n := 1
		for n < len(refused) && refs[refused[n].index].entry == e && refused[n].reason == reason {
			n++
		}
		dead := e
		if !holdsExactly(&w.dec, e, n) {
			deltas := w.deltas[:0]
			for _, r := range refused[:n] {
				deltas = append(deltas, refs[r.index].offsetDelta)
			}
			w.deltas = deltas
			var err error
			if dead, err = entryOfRecords(&w.dec, e, deltas); err != nil {
				// Cannot happen for an entry that converted; keep the
				// whole entry rather than lose the records.
				w.log.Error("cannot build a dead letter of some records; storing the whole entry", "offset", e.BaseOffset, "err", err)
				dead = e
			}
		}
		if err := w.deadLetter(ctx, []*wal.Entry{dead}, reason); err != nil {
			return err
		}
		refused = refused[n:]
	}
	req.refused = req.refused[:0]
	return nil
}

// deadLetter moves entries that SLS will never take to the WAL's dead
// letters, where `slsrelay dlq` can list, replay or drop them. It fails
// only if ctx ends first: then the position must not be committed.
func (w *writer) deadLetter(ctx context.Context, entries []*wal.Entry, reason string) error {
	for _, e := range entries {
		for {
			_, err := w.s.wal.DeadLetter(w.key, e, reason)
			if err == nil {
				break
			}
			w.log.Error("cannot store dead letter", "offset", e.BaseOffset, "err", err)
			if !sleepCtx(ctx, w.s.opts.RetryInterval) {
				return ctx.Err()
			}
		}
		w.s.stats.DeadLetters.Add(1)
		deadLetters.Inc()
	}
	w.log.Warn("moved entries to dead letters", "entries", len(entries), "records", recordsIn(entries), "reason", reason)
	return nil
}

// failed notes a retried failure of a write signed with cred; one line is
// logged when a run of failures starts (or its code changes), naming the
// AccessKey ID, never the secret. Safe for concurrent use.
func (w *writer) failed(cred wal.Credential, code, reason string) {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	if w.failing && code == w.lastCode {
		return
	}
	if !w.failing {
		writersFailing.Add(1)
	}
	w.failing, w.lastCode = true, code
	w.log.Warn("SLS write failing, retrying with back-off", "code", code, "reason", reason,
		"access_key_id", cred.AccessKeyID, "retry_from", w.s.opts.RetryInterval, "retry_up_to", w.s.opts.MaxRetryInterval)
}

// recovered notes a write signed with cred that SLS took. Safe for
// concurrent use.
func (w *writer) recovered(cred wal.Credential) {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	if w.prober != nil {
		w.probeDoneLocked()
	}
	if w.failing {
		writersFailing.Add(-1)
		w.failing, w.lastCode = false, ""
		w.log.Info("SLS write recovered")
		// SLS took a write of the key again (e.g. re-enabled): new
		// Produce requests with it are taken at once, not after DenyTTL.
		w.s.catalog.proved(authKey{w.key.Project, w.key.Logstore, cred})
	}
}

func recordsIn(es []*wal.Entry) int {
	n := 0
	for _, e := range es {
		n += int(e.Records)
	}
	return n
}
