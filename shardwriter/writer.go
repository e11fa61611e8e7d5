package shardwriter

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// writer delivers one WAL stream (a Kafka partition) to its SLS shard. It
// reads entries, converts them into LogGroups, sends each with PutLogs,
// and commits the stream's position once everything read was answered 200
// or moved to dead letters. Used by one goroutine.
type writer struct {
	s    *Service
	key  wal.StreamKey
	r    *wal.Reader
	conv *Converter
	g    *LogGroupBuilder
	pace *pacer
	log  *slog.Logger

	// group holds the entries with logs in g, so that a LogGroup SLS
	// refuses for good can be moved to dead letters.
	group []*wal.Entry
	cred  wal.Credential
	// converting is the entry Convert is working on: not all its logs are
	// sent when a LogGroup in the middle of it is.
	converting *wal.Entry
	// delivered is the offset after the last entry whose logs are all
	// sent (or dead-lettered): where a stop in the middle of a read
	// commits, so a restart does not send them again.
	delivered int64

	failing  bool   // in a run of failed writes; logged once when it starts
	lastCode string // the failure reason of that run
}

func newWriter(s *Service, k wal.StreamKey, r *wal.Reader) *writer {
	return &writer{
		s: s, key: k, r: r,
		conv: NewConverter(s.opts.Convert),
		g:    NewLogGroupBuilder(s.opts.LogGroup),
		pace: newPacer(max(0, s.opts.ShardBytesPerSec), max(0, s.opts.ShardRequestsPerSec)),
		log:  s.log.With("stream", streamName(k)),
	}
}

func (w *writer) run(ctx context.Context) {
	for ctx.Err() == nil {
		entries, err := w.read(ctx)
		if err != nil {
			var ce *wal.CorruptError
			if errors.As(err, &ce) {
				// The bytes are gone; nothing can deliver them. Say so
				// loudly, with the offsets lost, and move on.
				w.log.Error("skipping corrupt WAL entry", "offset", ce.Offset, "next", ce.Next, "err", ce.Err)
				if err := w.r.Commit(ce.Next); err != nil {
					w.log.Error("cannot commit WAL position", "err", err)
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
		if !w.deliver(ctx, entries) {
			// Stopping: commit what was sent; the rest comes again.
			if w.delivered > w.r.Committed() {
				if err := w.r.Commit(w.delivered); err != nil {
					w.log.Error("cannot commit WAL position", "err", err)
				}
			}
			return
		}
		last := entries[len(entries)-1]
		if err := w.r.Commit(last.BaseOffset + int64(last.Records)); err != nil {
			w.log.Error("cannot commit WAL position", "err", err)
		}
	}
}

// readEntries bounds the entries one WAL read returns; ReadBytes is the
// limit that matters, this one only keeps a read of tiny batches short.
const readEntries = 4096

// read returns the next entries, lingering up to Linger for more while
// what it has would not fill a LogGroup.
func (w *writer) read(ctx context.Context) ([]*wal.Entry, error) {
	entries, err := w.r.Read(ctx, w.s.opts.ReadBytes, readEntries)
	if err != nil || w.s.opts.Linger < 0 {
		return entries, err
	}
	deadline := time.Now().Add(w.s.opts.Linger)
	for size := entriesSize(entries); size < w.s.opts.ReadBytes/4; size = entriesSize(entries) {
		lctx, cancel := context.WithDeadline(ctx, deadline)
		more, err := w.r.Read(lctx, w.s.opts.ReadBytes-size, readEntries)
		cancel()
		if err != nil {
			break // the linger is over (or the WAL says why at the next Read)
		}
		entries = append(entries, more...)
	}
	return entries, nil
}

func entriesSize(es []*wal.Entry) int {
	n := 0
	for _, e := range es {
		n += len(e.Data)
	}
	return n
}

// deliver sends entries; it returns false if ctx ended first.
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
		w.group = append(w.group, e)
		w.converting = e
		_, err := w.conv.Convert(w.g, e, now, flush)
		w.converting = nil
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			if errors.Is(err, ErrUndecodable) {
				if n := len(w.group); n > 0 && w.group[n-1] == e {
					w.group = w.group[:n-1]
				}
				if err := w.deadLetter(ctx, []*wal.Entry{e}, err.Error()); err != nil {
					return false
				}
				w.markDelivered([]*wal.Entry{e})
				continue
			}
			w.log.Error("cannot convert entry", "offset", e.BaseOffset, "err", err)
			return false
		}
	}
	if w.g.Logs() > 0 {
		if err := w.send(ctx); err != nil {
			return false
		}
	}
	w.group = w.group[:0]
	return true
}

// send delivers the LogGroup in w.g, retrying until SLS takes it, refuses
// it for good (then its entries become dead letters), or ctx ends. It
// resets w.g and w.group.
func (w *writer) send(ctx context.Context) error {
	raw := w.g.Bytes(w.s.opts.Topic, w.s.opts.Source, nil)
	refresh := false
	for {
		// A stop ends sending at once: what is not sent comes again.
		if ctx.Err() != nil || !w.pace.wait(ctx, len(raw)) {
			return ctx.Err()
		}
		t0 := time.Now()
		err := w.put(raw, refresh)
		slsRequestDuration.UpdateDuration(t0)
		if err == nil {
			w.s.stats.LogGroups.Add(1)
			w.s.stats.Logs.Add(int64(w.g.Logs()))
			w.s.stats.RawBytes.Add(int64(len(raw)))
			slsRequestsOK.Inc()
			logsOut.Add(w.g.Logs())
			rawBytesOut.Add(len(raw))
			w.recovered()
			break
		}
		v, reason := classify(err)
		countSLSError(errorCode(err))
		if v == deadLetter {
			slsRequestsDead.Inc()
			if err := w.deadLetter(ctx, w.group, reason); err != nil {
				return err
			}
			break
		}
		w.s.stats.Retries.Add(1)
		slsRequestsRetried.Inc()
		w.failed(reason, err)
		refresh = reason == "ShardNotExist"
		if !sleepCtx(ctx, w.s.opts.RetryInterval) {
			return ctx.Err()
		}
	}
	w.markDelivered(w.group)
	w.g.Reset()
	clear(w.group)
	w.group = w.group[:0]
	return nil
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
	cl := w.s.clients.get(w.cred)
	return cl.PostRawLogWithCompressType(w.key.Project, w.key.Logstore, raw, w.s.opts.compressType(), &hashKey)
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
	w.log.Warn("moved entries to dead letters", "entries", len(entries), "reason", reason)
	return nil
}

func (w *writer) failed(reason string, err error) {
	if w.failing && reason == w.lastCode {
		return
	}
	w.failing, w.lastCode = true, reason
	w.log.Warn("SLS write failing, retrying", "reason", reason, "err", err, "retry_every", w.s.opts.RetryInterval)
}

func (w *writer) recovered() {
	if w.failing {
		w.failing, w.lastCode = false, ""
		w.log.Info("SLS write recovered")
	}
}
