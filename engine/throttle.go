package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// Throttler decides how long a producer must wait before its next request
// (Kafka's throttle_time_ms). The session reports it in the Produce
// response and stops reading the connection for that long, as brokers do
// since KIP-219, so clients that ignore the field (old sarama, the Beats'
// fork) slow down too. Implementations must be safe for concurrent use and
// fast: ThrottleTime runs for every partition of every Produce.
type Throttler interface {
	// ThrottleTime is the wait owed for n bytes just accepted for stream
	// k; 0 for none.
	ThrottleTime(k wal.StreamKey, n int) time.Duration
}

// Backlog is a snapshot of how far delivery is behind.
type Backlog struct {
	// Pressure is the WAL's fill above its high-water mark: 0 below it,
	// 1 at its size limit.
	Pressure float64
	Streams  map[wal.StreamKey]StreamBacklog
}

// StreamBacklog is one stream's undelivered data.
type StreamBacklog struct {
	Bytes     int64
	OldestAge time.Duration
}

// BacklogOf is the backlog a WAL snapshot shows: its pressure and the
// streams with undelivered data. A BacklogThrottle's snapshot function
// typically returns BacklogOf(w.Stats()).
func BacklogOf(st wal.Stats) Backlog {
	b := Backlog{Pressure: st.Pressure, Streams: make(map[wal.StreamKey]StreamBacklog, len(st.Streams))}
	for _, s := range st.Streams {
		if s.PendingBytes > 0 {
			b.Streams[s.Key] = StreamBacklog{Bytes: s.PendingBytes, OldestAge: s.OldestPending}
		}
	}
	return b
}

// ThrottleOptions configures a BacklogThrottle. Zero fields take the
// documented defaults.
//
// The yaml names are the keys of the `throttle` section of slsrelay's
// configuration file.
type ThrottleOptions struct {
	// SoftBacklogBytes: a stream with more undelivered (stored,
	// compressed) bytes slows its producers, more the further past it.
	// 0 (default) disables: during an SLS outage every stream's backlog
	// grows, and riding it out on disk is the WAL's job; the WAL's
	// high-water mark throttles everyone when the disk fills.
	SoftBacklogBytes int64 `yaml:"soft_backlog_bytes"`
	// SoftBacklogAge: a stream whose oldest undelivered entry is older
	// slows its producers. 0 (default) disables, for the same reason.
	SoftBacklogAge time.Duration `yaml:"soft_backlog_age"`
	// MaxThrottle caps one throttle. Default 5 s.
	MaxThrottle time.Duration `yaml:"max_throttle"`
	// ProjectBytesPerSec, if set, is a byte-rate quota per SLS project
	// (SASL user): a project sending faster is throttled for the time its
	// excess takes at that rate, as Kafka's client quotas do.
	ProjectBytesPerSec int64 `yaml:"project_bytes_per_sec"`
	// Refresh is how often the backlog is re-read. Default 1 s.
	Refresh time.Duration `yaml:"-"`
}

// BacklogThrottle throttles producers of streams whose delivery falls
// behind, and of the whole relay as the WAL fills, growing with the
// overshoot; and, optionally, producers over a per-project byte rate. It
// reads the backlog from a snapshot function every Refresh, never on the
// request path. Safe for concurrent use.
type BacklogThrottle struct {
	opts     atomic.Pointer[ThrottleOptions]
	snapshot func() Backlog
	cur      atomic.Pointer[Backlog]
	stop     chan struct{}
	once     sync.Once

	mu     sync.Mutex
	quotas map[string]*rateDebt
}

// NewBacklogThrottle starts refreshing from snapshot; Close stops it.
func NewBacklogThrottle(o ThrottleOptions, snapshot func() Backlog) *BacklogThrottle {
	t := &BacklogThrottle{snapshot: snapshot, stop: make(chan struct{}), quotas: map[string]*rateDebt{}}
	t.SetOptions(o)
	b := snapshot()
	t.cur.Store(&b)
	go t.refresh()
	return t
}

// SetOptions changes the limits (a SIGHUP reload); Refresh keeps its
// first value.
func (t *BacklogThrottle) SetOptions(o ThrottleOptions) {
	if o.MaxThrottle <= 0 {
		o.MaxThrottle = 5 * time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Second
	}
	if old := t.opts.Load(); old != nil {
		o.Refresh = old.Refresh
	}
	t.opts.Store(&o)
}

func (t *BacklogThrottle) refresh() {
	tick := time.NewTicker(t.opts.Load().Refresh)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			b := t.snapshot()
			t.cur.Store(&b)
		case <-t.stop:
			return
		}
	}
}

// Close stops the refreshing.
func (t *BacklogThrottle) Close() { t.once.Do(func() { close(t.stop) }) }

// ThrottleTime implements Throttler.
func (t *BacklogThrottle) ThrottleTime(k wal.StreamKey, n int) time.Duration {
	o := t.opts.Load()
	b := t.cur.Load()
	over := b.Pressure
	if sb, ok := b.Streams[k]; ok {
		if soft := o.SoftBacklogBytes; soft > 0 && sb.Bytes > soft {
			over = max(over, float64(sb.Bytes-soft)/float64(soft))
		}
		if soft := o.SoftBacklogAge; soft > 0 && sb.OldestAge > soft {
			over = max(over, float64(sb.OldestAge-soft)/float64(soft))
		}
	}
	d := time.Duration(min(over, 1) * float64(o.MaxThrottle))
	if q := o.ProjectBytesPerSec; q > 0 {
		d = max(d, t.quota(k.Project).add(n, q, time.Now()))
	}
	return min(d, o.MaxThrottle)
}

func (t *BacklogThrottle) quota(project string) *rateDebt {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.quotas[project]
	if !ok {
		r = &rateDebt{}
		t.quotas[project] = r
	}
	return r
}

// rateDebt is a byte-rate meter: bytes accepted beyond what the rate has
// paid off so far become a debt, and the throttle is the time the rate
// needs to pay it.
type rateDebt struct {
	mu   sync.Mutex
	debt float64 // bytes
	at   time.Time
}

func (r *rateDebt) add(n int, perSec int64, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() {
		r.debt = max(0, r.debt-now.Sub(r.at).Seconds()*float64(perSec))
	}
	r.at = now
	// A burst of one second's worth is free, as a token bucket's depth.
	r.debt += float64(n)
	over := r.debt - float64(perSec)
	if over <= 0 {
		return 0
	}
	return time.Duration(over / float64(perSec) * float64(time.Second))
}
