package shardwriter

import (
	"encoding/binary"
	"time"
)

// SLS takes a log whose time is at most 7 days old and at most 15 minutes
// ahead of its own clock, and refuses the whole request otherwise
// (DESIGN.md, "SLS limits" and "What real SLS enforces": InvalidTimestamp;
// the current PutLogs reference, https://www.alibabacloud.com/help/doc-detail/29026.htm,
// was not found stating the window itself: the figures are DESIGN.md's).
// The Converter already keeps times in that window on the relay's clock
// when it reads an entry; before each send (each retry included) the
// writer checks them again against SLS's clock as estimated from its
// answers (slsclock.go), with a margin for the estimate's error (Date has
// second resolution), the request's own duration and a few minutes of
// drift. A log outside gets SLS's current time (as estimated) as its Time,
// its TimeNs kept: like a record without a timestamp, it is stamped when
// SLS gets it.
const (
	slsMaxAge      = 7 * 24 * time.Hour
	slsMaxFuture   = 15 * time.Minute
	sendTimeMargin = 2 * time.Minute
)

// sendWindow returns the Times (s) a log may have when sent at SLS time
// now, and the replacement for a Time outside.
func sendWindow(now time.Time) (lo, hi, repl uint32) {
	return uint32(now.Add(-slsMaxAge + sendTimeMargin).Unix()), uint32(now.Add(slsMaxFuture - sendTimeMargin).Unix()), uint32(now.Unix())
}

// retimeForSLS gives the logs of g outside SLS's time window, on SLS's
// clock as last seen (nil: none seen, nothing to check), a time inside. A
// writer calls it before each attempt of a PutLogs, the write proof before
// its own.
func retimeForSLS(g *LogGroupBuilder, clock *slsClock) {
	if clock == nil {
		return
	}
	lo, hi, repl := sendWindow(clock.now())
	if n := g.retime(lo, hi, repl); n > 0 {
		logFixes[svBadTime].Add(n)
	}
}

// retime gives every log whose Time is outside [lo, hi] the Time repl, and
// returns how many it changed. The group is re-encoded only when one
// changes.
func (g *LogGroupBuilder) retime(lo, hi, repl uint32) int {
	if g.logs == 0 || g.minSec >= lo && g.maxSec <= hi {
		return 0
	}
	out := g.spare[:0]
	changed := 0
	minSec, maxSec := uint32(0xFFFFFFFF), uint32(0)
	for i, start := range g.starts {
		end := len(g.buf)
		if i+1 < len(g.starts) {
			end = g.starts[i+1]
		}
		log := g.buf[start:end]
		_, n := binary.Uvarint(log[1:]) // the Log's length
		body := log[1+n:]
		// The body starts with Time (appendLog writes it first).
		sec64, m := binary.Uvarint(body[1:])
		sec := uint32(sec64)
		g.starts[i] = len(out)
		if sec >= lo && sec <= hi {
			out = append(out, log...)
		} else {
			rest := body[1+m:]
			newBody := 1 + lgVarintLen(uint64(repl)) + len(rest)
			out = append(out, lgTagLogs)
			out = binary.AppendUvarint(out, uint64(newBody))
			out = append(out, lgTagTime)
			out = binary.AppendUvarint(out, uint64(repl))
			out = append(out, rest...)
			sec = repl
			changed++
		}
		minSec, maxSec = min(minSec, sec), max(maxSec, sec)
	}
	g.spare, g.buf = g.buf, out
	g.minSec, g.maxSec = minSec, maxSec
	return changed
}
