package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// budget is the global allowance of request bytes held in memory: frames
// read and not yet stored or answered. gnet always reads, so the relay
// bounds what it takes out of gnet's buffers: past the budget no session
// accepts frames, and the paused ones are resumed as it drains. Safe for
// concurrent use.
type budget struct {
	max  int64
	used atomic.Int64

	mu      sync.Mutex
	waiting map[*session]struct{}
}

func newBudget(max int64) *budget {
	return &budget{max: max, waiting: map[*session]struct{}{}}
}

// full reports whether the budget has no room for n more bytes; if so s is
// resumed once it may have. A frame larger than the whole budget fits an
// empty one. The caller holds s.mu, so nothing here may call into a session.
func (b *budget) full(s *session, n int) bool {
	if b.fits(b.used.Load(), n) {
		return false
	}
	b.mu.Lock()
	b.waiting[s] = struct{}{}
	b.mu.Unlock()
	if b.fits(b.used.Load(), n) {
		// Released in between: that release may have found no waiter.
		// Take s back and wake the others from elsewhere.
		b.forget(s)
		go b.wake()
		return false
	}
	return true
}

func (b *budget) take(n int) { b.used.Add(int64(n)) }

// fits reports whether n more bytes fit beside used: within the budget,
// or alone in an empty one (a frame larger than the whole budget still
// goes). n == 0 asks whether anything fits at all.
func (b *budget) fits(used int64, n int) bool {
	if n == 0 {
		return used < b.max
	}
	return used == 0 || used+int64(n) <= b.max
}

// tryTake takes n bytes if they fit.
func (b *budget) tryTake(n int) bool {
	for {
		used := b.used.Load()
		if !b.fits(used, n) {
			return false
		}
		if b.used.CompareAndSwap(used, used+int64(n)) {
			return true
		}
	}
}

// spent reports whether nothing more fits.
func (b *budget) spent() bool { return b.used.Load() >= b.max }

// release gives n bytes back and resumes waiting sessions. The caller must
// not hold any session's mu.
func (b *budget) release(n int) {
	if n == 0 {
		return
	}
	if b.used.Add(-int64(n)) < b.max {
		b.wake()
	}
}

func (b *budget) wake() {
	b.mu.Lock()
	if len(b.waiting) == 0 {
		b.mu.Unlock()
		return
	}
	ss := make([]*session, 0, len(b.waiting))
	for s := range b.waiting {
		ss = append(ss, s)
	}
	clear(b.waiting)
	b.mu.Unlock()
	for _, s := range ss {
		s.unmute()
	}
}

func (b *budget) forget(s *session) {
	b.mu.Lock()
	delete(b.waiting, s)
	b.mu.Unlock()
}

// reaper closes connections that idle past IdleTimeout or leave a request
// half-sent past PartialFrameTimeout. TLS connections use read deadlines
// instead; gnet ones are checked here, once a second.
type reaper struct {
	srv      *Server
	sessions *sync.Map // the server's open connections, which it walks
	stop     chan struct{}
	once     sync.Once
}

func newReaper(srv *Server) *reaper {
	return &reaper{srv: srv, sessions: &srv.sessions, stop: make(chan struct{})}
}

func (r *reaper) run() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-r.stop:
			return
		}
		r.srv.dedup.forgetIdle(time.Now())
		now := time.Now().UnixNano()
		idle, partial := r.srv.opts.IdleTimeout.Nanoseconds(), r.srv.opts.PartialFrameTimeout.Nanoseconds()
		r.sessions.Range(func(k, _ any) bool {
			s := k.(*session)
			if !s.reaped {
				return true // TLS connections time out by read deadlines
			}
			if since := s.partialSince.Load(); since != 0 && now-since > partial {
				s.fail("request not completed within %v (partial_frame_timeout)", r.srv.opts.PartialFrameTimeout)
			} else if now-s.lastActive.Load() > idle && s.idle() {
				s.fail("idle for %v (idle_timeout)", r.srv.opts.IdleTimeout)
			}
			return true
		})
	}
}

func (r *reaper) close() { r.once.Do(func() { close(r.stop) }) }
