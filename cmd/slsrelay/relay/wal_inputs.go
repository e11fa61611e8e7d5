package relay

import (
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// The engine's inputs derived from the WAL, in one place:
//
//   - rememberStored, at start: the idempotent producers' last batches of
//     each stream, so a retry across a restart is not stored twice;
//   - backlog, while running: how far delivery is behind, which the
//     throttle turns into throttle_time_ms.

// dedupTail is how many of each stream's last entries rememberStored reads:
// the engine remembers an idempotent producer's last 5 batches per stream,
// so this covers a dozen producers interleaved.
const dedupTail = 64

// rememberStored gives the engine the idempotent producer batches at the
// end of each stream, so that a batch a producer retries across a restart
// of the relay (its answer was lost to the restart) is not stored twice.
// It reads a few bytes per entry, not the batches.
func (r *Relay) rememberStored() {
	n := 0
	for _, k := range r.wal.Streams() {
		heads, err := r.wal.Tail(k, dedupTail, batch.RecordBatchHeaderLen)
		if err != nil {
			r.log.Warn("cannot read the stream's last entries; retries of them may be stored twice", "stream", k, "err", err)
			continue
		}
		for _, h := range heads {
			r.server.RememberStored(k, h.JSON, h.BaseOffset, h.Records, h.Head)
		}
		n += len(heads)
	}
	r.log.Debug("idempotent producer state rebuilt from the WAL", "entries", n)
}

// backlog reads how far delivery is behind, for the throttle.
func (r *Relay) backlog() engine.Backlog { return engine.BacklogOf(r.wal.Stats()) }
