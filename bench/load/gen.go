package load

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Profile is how a kind of shipper batches.
type Profile struct {
	Name string
	// Compression: none, gzip, snappy, lz4 or zstd.
	Compression string
	// BatchMaxBytes bounds one partition's batch (uncompressed), as
	// Beats' max_message_bytes or librdkafka's batch.size do.
	BatchMaxBytes int
	// Linger is how long a batch waits to fill.
	Linger time.Duration
	// InFlight is how many Produce requests a connection keeps unanswered.
	InFlight int
}

// Profiles by name.
var Profiles = map[string]Profile{
	// Beats (elastic's sarama): up to 2048 events per batch, 1 MB
	// max_message_bytes, gzip, 5 requests in flight.
	"beats": {Name: "beats", Compression: "gzip", BatchMaxBytes: 1_000_000, InFlight: 5},
	// Telegraf / librdkafka-like: smaller batches, lz4, a short linger.
	"telegraf": {Name: "telegraf", Compression: "lz4", BatchMaxBytes: 64 << 10, Linger: 5 * time.Millisecond, InFlight: 5},
}

// IDs hands out record ids, 1, 2, 3 …, unique within a run.
type IDs struct{ n atomic.Uint64 }

// Next returns a new id.
func (g *IDs) Next() uint64 { return g.n.Add(1) }

// Issued is how many ids were handed out.
func (g *IDs) Issued() uint64 { return g.n.Load() }

// Sizes draws record sizes from a lognormal distribution around a median.
type Sizes struct {
	Median float64 // bytes
	Sigma  float64 // of the underlying normal; 0 gives fixed sizes
	Min    int
	Max    int
}

// DefaultSizes: lognormal around 500 B, most records 200 B … 1.3 KB.
var DefaultSizes = Sizes{Median: 500, Sigma: 0.5, Min: 64, Max: 16 << 10}

// Draw returns one size.
func (s Sizes) Draw(r *rand.Rand) int {
	n := int(s.Median * math.Exp(s.Sigma*r.NormFloat64()))
	if n < s.Min {
		n = s.Min
	}
	if s.Max > 0 && n > s.Max {
		n = s.Max
	}
	return n
}

// filler is log-like text that compresses as logs do (≈4–6× with gzip).
var filler = func() string {
	words := strings.Fields(`GET POST /api/v1/orders /api/v1/users /healthz 200 201 404 500 upstream
	latency_ms user_id=4821 session=9f2c1a trace=ab12cd34 INFO WARN ERROR DEBUG
	connection reset by peer timeout retrying payment-service inventory-service
	cache miss hit key=product:1234 region=cn-hangzhou pod=web-7d9f8 node=ecs-17
	Mozilla/5.0 (X11; Linux x86_64) bytes_sent=5321 status=ok method=GET`)
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for b.Len() < 1<<20 {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(8) == 0 {
			b.WriteString(strconv.Itoa(r.IntN(100000)))
		}
		b.WriteByte(' ')
	}
	return b.String()
}()

// Value builds a record value of about size bytes:
// {"id":<id>,"ts":<unix µs>,"msg":"<log-like text>"}.
func Value(dst []byte, id uint64, ts time.Time, size int, r *rand.Rand) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, ts.UnixMicro(), 10)
	dst = append(dst, `,"msg":"`...)
	pad := size - len(dst) - 2
	if pad < 1 {
		pad = 1
	}
	off := r.IntN(len(filler) - pad)
	dst = append(dst, filler[off:off+pad]...)
	return append(dst, `"}`...)
}

// ParseValue reads the id and send time back from a value Value built
// (or from any text starting with {"id":N,"ts":M). ok is false otherwise.
func ParseValue(v []byte) (id uint64, ts time.Time, ok bool) {
	const p1, p2 = `{"id":`, `,"ts":`
	if len(v) < len(p1) || string(v[:len(p1)]) != p1 {
		return 0, time.Time{}, false
	}
	i := len(p1)
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		id = id*10 + uint64(v[i]-'0')
	}
	if i+len(p2) > len(v) || string(v[i:i+len(p2)]) != p2 {
		return 0, time.Time{}, false
	}
	i += len(p2)
	var us int64
	j := i
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		us = us*10 + int64(v[i]-'0')
	}
	if i == j {
		return 0, time.Time{}, false
	}
	return id, time.UnixMicro(us), true
}

// Pace is the offered rate: fixed (Rate records/s) or, with a Burst,
// Rate×Factor during On out of every On+Off. Rate 0 means as fast as acks
// allow.
type Pace struct {
	Rate   float64
	Factor float64
	On     time.Duration
	Off    time.Duration
}

// RateAt is the offered rate at elapsed time t.
func (p Pace) RateAt(t time.Duration) float64 {
	if p.Factor > 1 && p.On > 0 {
		if t%(p.On+p.Off) < p.On {
			return p.Rate * p.Factor
		}
	}
	return p.Rate
}

// pacer lets one producer (with a share of the offered rate) know how many
// records it may send by now. It keeps its debt: a producer held back
// catches up, so the offered load does not silently drop.
type pacer struct {
	pace  Pace
	share float64
	start time.Time
	last  time.Time
	cred  float64
}

func newPacer(p Pace, share float64, start time.Time) *pacer {
	return &pacer{pace: p, share: share, start: start, last: start}
}

// take returns how many records may go now (≥ 1), sleeping until at
// least one may; it returns 0 when stop is closed. Unlimited when Rate 0.
func (p *pacer) take(max int, stop <-chan struct{}) int {
	if p.pace.Rate <= 0 {
		return max
	}
	for {
		now := time.Now()
		p.cred += p.pace.RateAt(now.Sub(p.start)) * p.share * now.Sub(p.last).Seconds()
		p.last = now
		if p.cred >= 1 {
			n := int(p.cred)
			if n > max {
				n = max
			}
			p.cred -= float64(n)
			return n
		}
		wait := time.Duration((1 - p.cred) / (p.pace.RateAt(now.Sub(p.start)) * p.share) * float64(time.Second))
		if wait < time.Millisecond {
			wait = time.Millisecond
		}
		if wait > 100*time.Millisecond {
			wait = 100 * time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return 0
		case <-t.C:
		}
	}
}
