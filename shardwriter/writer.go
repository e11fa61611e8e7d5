package shardwriter

import (
	"context"
	"errors"
	"fmt"
	"github.com/twmb/franz-go/pkg/kerr"
	"log/slog"
	"time"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// writer delivers one WAL stream (a Kafka partition) to its SLS shard. It
// reads entries, converts them into LogGroups, sends each with PutLogs,
// and after each answer commits the stream's position past the entries
// whose logs are all answered 200 or moved to dead letters
// (wal.Reader.CommitAsync: queued, not waited for), so that a crash sends
// again only the LogGroup that was in flight and those already sent of
// the entry it is part of. Used by one goroutine.
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

	// group holds the entries with logs in g, so that a LogGroup SLS
	// refuses for good can be moved to dead letters.
	group []*wal.Entry
	cred  wal.Credential
	// groupSince is when the first log of w.g was added: a LogGroup that
	// is not full is carried over from read to read until Linger after.
	groupSince time.Time
	// converting is the entry Convert is working on: not all its logs are
	// sent when a LogGroup in the middle of it is.
	converting *wal.Entry
	// delivered is the offset after the last entry whose logs are all
	// sent (or dead-lettered): where a stop in the middle of a read
	// commits, so a restart does not send them again.
	delivered int64
	// committed is the last position handed to the reader's commit.
	committed int64

	// fresh is the writer of fresh entries split off this one while it
	// drains a backlog, freshFrom where that one started (fresh.go).
	fresh     *writer
	freshFrom int64
	// isFresh marks a fresh writer before the hand-over: it does not
	// commit, and goes ahead of the backlog in the shard's pacer.
	isFresh bool

	failing  bool          // in a run of failed writes; logged once when it starts
	lastCode string        // the error code of that run
	backoff  time.Duration // the last wait of that run

	raw    []byte        // a LogGroup of some of w.g's logs (logBytes)
	dec    batch.Decoder // decodes entries again for dead letters of some records
	deltas []int32
	// refused are the logs of w.g SLS refused (sendLogs).
	refused []refusedLog
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
	}
}

func (w *writer) run(ctx context.Context) {
	for ctx.Err() == nil {
		entries, err := w.read(ctx)
		if errors.Is(err, wal.ErrHeadReached) {
			w.handOver(ctx)
			return
		}
		if errors.Is(err, errGroupDue) {
			// The LogGroup carried over from earlier reads waited Linger.
			if err := w.send(ctx); err != nil {
				break
			}
			continue
		}
		if err != nil {
			var ce *wal.CorruptError
			if errors.As(err, &ce) && w.behind() {
				// Only the stream's reader may skip it: the fresh
				// writer waits for the hand-over.
				if !sleepCtx(ctx, w.s.opts.RetryInterval) {
					break
				}
				continue
			}
			if errors.As(err, &ce) {
				// The bytes are gone; nothing can deliver them. Say so
				// loudly, with the offsets lost, and move on — after
				// sending the entries before them.
				if w.g.Logs() > 0 {
					if err := w.send(ctx); err != nil {
						break
					}
				}
				w.log.Error("skipping corrupt WAL entry", "offset", ce.Offset, "next", ce.Next, "err", ce.Err)
				if err := w.r.Commit(ce.Next); err != nil {
					w.log.Error("cannot commit WAL position", "err", err)
				} else {
					w.committed = max(w.committed, ce.Next)
				}
				continue
			}
			if ctx.Err() == nil && !errors.Is(err, wal.ErrClosed) {
				w.log.Error("cannot read WAL", "err", err)
				sleepCtx(ctx, w.s.opts.RetryInterval)
				continue
			}
			break
		}
		w.maybeSplit(entries)
		if !w.deliver(ctx, entries) {
			break
		}
		// Everything read is done — sent, dead-lettered, delivered by the
		// write proof (skipped) — but a LogGroup carried over.
		last := entries[len(entries)-1]
		w.commit(w.doneUpTo(last.BaseOffset + int64(last.Records)))
	}
	w.stopCommit()
}

// stopCommit, when stopping, makes what was sent durable; the rest comes
// again.
func (w *writer) stopCommit() {
	// w.committed may be past delivered (entries the write proof
	// delivered, at the end of a read), and not yet written.
	if pos := max(w.doneUpTo(w.delivered), w.committed); !w.behind() && pos > w.r.Committed() {
		if err := w.r.Commit(pos); err != nil && !errors.Is(err, wal.ErrClosed) {
			w.log.Error("cannot commit WAL position", "err", err)
		}
	}
}

// doneUpTo returns pos, or the start of the LogGroup being built if that
// comes first: every entry before the result is delivered.
func (w *writer) doneUpTo(pos int64) int64 {
	if len(w.group) > 0 {
		return min(pos, w.group[0].BaseOffset)
	}
	return pos
}

// commit queues pos as the stream's committed position unless it is not
// past the last one; the WAL writes it with its next group without the
// writer waiting for it.
func (w *writer) commit(pos int64) {
	if pos <= w.committed || w.behind() {
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

// errGroupDue is read's answer when the LogGroup carried over from earlier
// reads has waited Linger and nothing more came.
var errGroupDue = errors.New("shardwriter: the LogGroup being built is due")

// read returns the next entries. With a LogGroup carried over (deliver), it
// waits only until that group is due (Linger after its first log), then
// returns errGroupDue.
func (w *writer) read(ctx context.Context) ([]*wal.Entry, error) {
	if w.g.Logs() == 0 {
		return w.r.Read(ctx, w.s.opts.ReadBytes, readEntries)
	}
	dctx, cancel := context.WithDeadline(ctx, w.groupSince.Add(max(0, w.s.opts.Linger)))
	defer cancel()
	entries, err := w.r.Read(dctx, w.s.opts.ReadBytes, readEntries)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, errGroupDue
	}
	return entries, err
}

// deliver converts entries and sends every LogGroup that fills up; the last
// one, not full, is carried over to the next read unless it is due. It
// returns false if ctx ended first.
func (w *writer) deliver(ctx context.Context, entries []*wal.Entry) bool {
	now := time.Now()
	var cur *wal.Entry
	// A flush in the middle of an entry: the entry's remaining logs start
	// the next LogGroup, so it belongs to that one too.
	flush := func(*LogGroupBuilder) error {
		if err := w.send(ctx); err != nil {
			return err
		}
		w.group = append(w.group, cur)
		w.groupSince = time.Now()
		return nil
	}
	for _, e := range entries {
		if e.Delivered { // sent by the write proof; the commit after this read passes it
			continue
		}
		if w.g.Logs() > 0 && e.Credential != w.cred {
			if err := w.send(ctx); err != nil {
				return false
			}
		}
		cur, w.cred = e, e.Credential
		if w.g.Logs() == 0 {
			w.groupSince = time.Now()
		}
		w.group = append(w.group, e)
		w.converting = e
		sent, err := w.conv.Convert(w.g, e, now, flush)
		w.converting = nil
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
				w.markDelivered([]*wal.Entry{e})
				w.commit(w.doneUpTo(w.delivered))
				continue
			}
			w.log.Error("cannot convert entry", "offset", e.BaseOffset, "err", err)
			return false
		}
	}
	// A LogGroup that is not full is carried over to the next read, to
	// be filled up, unless it waited Linger already (read sends it when it
	// does).
	if w.g.Logs() > 0 && (w.s.opts.Linger <= 0 || time.Since(w.groupSince) >= w.s.opts.Linger) {
		if err := w.send(ctx); err != nil {
			return false
		}
	}
	if w.g.Logs() == 0 {
		w.group = w.group[:0]
	}
	return true
}

// send delivers the LogGroup in w.g (sendLogs), then marks its entries
// delivered and resets w.g and w.group. It fails only if ctx ends first.
func (w *writer) send(ctx context.Context) error {
	w.refused = w.refused[:0]
	if err := w.sendLogs(ctx, 0, w.g.Logs()); err != nil {
		return err
	}
	if err := w.deadLetterRefused(ctx); err != nil {
		return err
	}
	w.markDelivered(w.group)
	w.g.Reset()
	clear(w.group)
	w.group = w.group[:0]
	w.commit(w.delivered)
	return nil
}

// sendLogs sends logs i to j-1 of w.g until SLS takes them, or refuses
// them for good (errorCodes, classify.go): a refused body is split in
// halves, each sent the same way, so that only the logs SLS refuses alone
// are refused and the rest is delivered once; other refusals refuse the
// logs at once. Refused logs are noted in w.refused, for send to make dead
// letters of. Every attempt first checks the logs' times against SLS's
// clock. It fails only if ctx ends first.
func (w *writer) sendLogs(ctx context.Context, i, j int) error {
	refresh := false
	for {
		// A stop ends sending at once: what is not sent comes again.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.checkTimes()
		raw := w.logBytes(i, j)
		if !w.paceWait(ctx, len(raw)) {
			return ctx.Err()
		}
		t0 := time.Now()
		err := w.put(raw, refresh)
		slsRequestDuration.UpdateDuration(t0)
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
			w.recovered()
			return nil
		}
		rule, reason := ruleFor(err)
		code := errorCode(err)
		countSLSError(code, rule)
		switch {
		case rule.verdict == split && j-i > 1:
			slsRequestsSplit.Inc()
			mid := i + (j-i)/2
			if err := w.sendLogs(ctx, i, mid); err != nil {
				return err
			}
			return w.sendLogs(ctx, mid, j)
		case rule.verdict == split || rule.verdict == deadLetter:
			slsRequestsDead.Inc()
			w.refusedKey(rule, err)
			for k := i; k < j; k++ {
				w.refused = append(w.refused, refusedLog{k, reason})
			}
			return nil
		}
		w.refusedKey(rule, err)
		w.s.stats.Retries.Add(1)
		slsRequestsRetried.Inc()
		if rule == ruleQuota && w.projectPace != nil && w.quotaAnswer(code) {
			// Adaptive pacing: the pacer slows down, and the retry waits
			// for it rather than for a back-off.
			continue
		}
		w.failed(code, reason)
		refresh = rule.verdict == refreshRetry
		if !sleepCtx(ctx, w.nextBackoff()) {
			return ctx.Err()
		}
	}
}

// paceWait waits until the shard's and the project's pacers let a request
// of n bytes go; false if ctx ended.
func (w *writer) paceWait(ctx context.Context, n int) bool {
	if w.behind() {
		w.pace.charge(n) // fresh logs first: the backlog gets what is left
	} else if !w.pace.wait(ctx, n) {
		return false
	}
	return w.projectPace == nil || w.projectPace.wait(ctx, n)
}

// quotaAnswer slows the pacer SLS's quota code is about: the shard's for
// ShardWriteQuotaExceed, the project's for the project-level codes
// (WriteQuotaExceed; throttling page,
// https://www.alibabacloud.com/help/en/sls/user-guide/expansion-of-resources:
// "WriteQuotaExceed (project-level resource quota exceeded)",
// "ShardWriteQuotaExceed (shard-level resource quota exceeded)"). It
// reports whether that pacer now holds writers to a rate; if not (nothing
// accepted yet to go by), the retry backs off as with fixed pacing.
func (w *writer) quotaAnswer(code string) bool {
	p, scope := w.projectPace, "project"
	if code == "ShardWriteQuotaExceed" {
		p, scope = w.pace, "shard"
	}
	if p.quotaAnswer() {
		bps, rps := p.rates()
		w.log.Debug("SLS answered a write quota code; pacing down", "code", code, "scope", scope,
			"bytes_per_sec", int64(bps), "requests_per_sec", int64(rps))
	}
	return p.limited()
}

// refusedKey tells the catalog when SLS refused the entries' key, for good
// (write denied, key gone) or for now (disabled, STS token expired,
// project forbidden): new Produce requests with it get
// TOPIC_AUTHORIZATION_FAILED at once, and its next batch must prove the
// key again before it is acknowledged, so nothing SLS would refuse is
// acknowledged meanwhile.
func (w *writer) refusedKey(rule errorRule, err error) {
	if rule.kafka == kerr.TopicAuthorizationFailed {
		w.s.catalog.WriteDenied(w.key.Project, w.key.Logstore, w.cred, err)
	}
}

// logBytes returns the LogGroup of logs i to j-1 of w.g. It is valid until
// the next call or change of w.g.
func (w *writer) logBytes(i, j int) []byte {
	if i == 0 && j == w.g.Logs() {
		return w.g.Bytes(w.s.opts.Topic, w.s.opts.Source, nil)
	}
	w.raw = w.g.appendRange(w.raw[:0], i, j, w.s.opts.Topic, w.s.opts.Source, nil)
	return w.raw
}

// checkTimes gives logs of w.g outside SLS's time window, on SLS's clock
// as last seen, a time inside (sendtime.go).
func (w *writer) checkTimes() {
	lo, hi, repl := sendWindow(w.s.clock.now())
	if n := w.g.retime(lo, hi, repl); n > 0 {
		logFixes[svBadTime].Add(n)
	}
}

// nextBackoff returns how long to wait before the next retry of a run of
// failures: RetryInterval, doubling at each failure up to
// MaxRetryInterval.
func (w *writer) nextBackoff() time.Duration {
	if w.backoff == 0 {
		w.backoff = w.s.opts.RetryInterval
	} else {
		w.backoff = min(2*w.backoff, max(w.s.opts.MaxRetryInterval, w.s.opts.RetryInterval))
	}
	return w.backoff
}

// markDelivered advances delivered past entries whose logs are all sent.
func (w *writer) markDelivered(entries []*wal.Entry) {
	for _, e := range entries {
		if e != w.converting {
			w.delivered = max(w.delivered, e.BaseOffset+int64(e.Records))
		}
	}
}

func (w *writer) put(raw []byte, refresh bool) error {
	hashKey, err := w.s.catalog.routeKey(w.key.Project, w.key.Logstore, w.key.Partition, w.cred, refresh)
	if err != nil {
		return err
	}
	return w.s.clients.putLogs(&w.s.opts, w.cred, w.key.Project, w.key.Logstore, hashKey, raw)
}

// refusedLog is a log of w.g that SLS refused, and SLS's reason.
type refusedLog struct {
	index  int
	reason string
}

// deadLetterRefused moves the records of the logs in w.refused to dead
// letters, one per entry and reason: an entry all of whose records were
// refused as it is stored, others as a new entry of just those records
// (entryOfRecords), so that a replay sends again exactly what SLS refused.
// It fails only if ctx ends first.
func (w *writer) deadLetterRefused(ctx context.Context) error {
	refused := w.refused
	for len(refused) > 0 {
		e, reason := w.g.refs[refused[0].index].entry, refused[0].reason
		n := 1
		for n < len(refused) && w.g.refs[refused[n].index].entry == e && refused[n].reason == reason {
			n++
		}
		dead := e
		if n != int(e.Records) {
			deltas := w.deltas[:0]
			for _, r := range refused[:n] {
				deltas = append(deltas, w.g.refs[r.index].offsetDelta)
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
	w.refused = w.refused[:0]
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

// failed notes a retried failure; one line is logged when a run of
// failures starts (or its code changes), naming the AccessKey ID, never
// the secret.
func (w *writer) failed(code, reason string) {
	if w.failing && code == w.lastCode {
		return
	}
	if !w.failing {
		writersFailing.Add(1)
	}
	w.failing, w.lastCode = true, code
	w.log.Warn("SLS write failing, retrying with back-off", "code", code, "reason", reason,
		"access_key_id", w.cred.AccessKeyID, "retry_from", w.s.opts.RetryInterval, "retry_up_to", w.s.opts.MaxRetryInterval)
}

func (w *writer) recovered() {
	w.backoff = 0
	if w.failing {
		writersFailing.Add(-1)
		w.failing, w.lastCode = false, ""
		w.log.Info("SLS write recovered")
		// SLS took a write of the key again (e.g. re-enabled): new
		// Produce requests with it are taken at once, not after DenyTTL.
		w.s.catalog.proved(authKey{w.key.Project, w.key.Logstore, w.cred})
	}
}

func recordsIn(es []*wal.Entry) int {
	n := 0
	for _, e := range es {
		n += int(e.Records)
	}
	return n
}
