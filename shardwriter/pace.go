package shardwriter

import (
	"context"
	"time"
)

// pacer keeps one writer under its shard's SLS write quota (bytes and
// requests per second), so the relay does not hammer SLS into 403s — also
// while it drains a backlog after an outage. It is a token bucket one
// second deep; a request larger than a second's bytes goes through and is
// paid for afterwards. Used by one goroutine.
type pacer struct {
	bytesPerSec, reqPerSec float64
	bytes, reqs            float64 // tokens
	at                     time.Time
}

func newPacer(bytesPerSec, reqPerSec int) *pacer {
	p := &pacer{bytesPerSec: float64(bytesPerSec), reqPerSec: float64(reqPerSec)}
	p.bytes, p.reqs = p.bytesPerSec, p.reqPerSec
	return p
}

// wait blocks until a request of n bytes fits; false if ctx ended.
func (p *pacer) wait(ctx context.Context, n int) bool {
	for {
		now := time.Now()
		if !p.at.IsZero() {
			el := now.Sub(p.at).Seconds()
			p.bytes = min(p.bytesPerSec, p.bytes+el*p.bytesPerSec)
			p.reqs = min(p.reqPerSec, p.reqs+el*p.reqPerSec)
		}
		p.at = now
		var need time.Duration
		if p.bytesPerSec > 0 && p.bytes <= 0 {
			need = max(need, time.Duration(-p.bytes/p.bytesPerSec*float64(time.Second))+time.Millisecond)
		}
		if p.reqPerSec > 0 && p.reqs < 1 {
			need = max(need, time.Duration((1-p.reqs)/p.reqPerSec*float64(time.Second))+time.Millisecond)
		}
		if need == 0 {
			p.bytes -= float64(n)
			p.reqs--
			return true
		}
		if !sleepCtx(ctx, need) {
			return false
		}
	}
}
