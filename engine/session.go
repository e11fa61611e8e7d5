package engine

import (
	"crypto/x509"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// transport is what a session needs from a connection. Implementations
// must make every method safe to call from any goroutine and never block.
type transport interface {
	// send queues b to be written after everything queued before; with
	// closeAfter the connection is closed once b is written.
	send(b []byte, closeAfter bool)
	// resume tells a transport that stopped handing over frames (because
	// room returned false) that there is room again.
	resume()
	// close drops the connection.
	close()
	// backlog is how many answer bytes wait to be written. Called only
	// from the transport's reading side (gnet: the event loop).
	backlog() int
}

// maxWriteBacklog bounds the answers waiting to be written to a peer that
// does not read them: past it the connection's requests are not read.
// Produce answers are small: this is hundreds of them.
const maxWriteBacklog = 1 << 20

// saslStage is where a connection is in the SASL exchange.
type saslStage uint8

const (
	saslNone          saslStage = iota // nothing yet: only ApiVersions and SaslHandshake
	saslRawToken                       // SaslHandshake v0 done: the next frames are bare SASL tokens
	saslAuthenticate                   // SaslHandshake v1 done: a SaslAuthenticate request is next
	saslAuthenticated                  // done (or the listener has no SASL)
)

// slot is one request's place in its connection's response order.
type slot struct {
	buf        []byte
	done       bool
	silent     bool // acks=0 Produce: holds its place, writes nothing
	closeAfter bool
	// last: read during a drain; the connection closes once it is written.
	last       bool
	frameBytes int // budget held until the response is complete
}

// session is the transport-agnostic protocol core of one connection.
//
// Transports call pushFrame (from their reading goroutine or event loop) with
// whole frames; the frames are handled in order by one goroutine at a time,
// started when work arrives and gone when the queue is empty. Responses
// complete from any goroutine and are written in request order.
type session struct {
	srv  *Server
	ln   *listener
	t    transport
	peer string

	authenticated atomic.Bool // read by transports to pick the frame limit
	// lastActive and partialSince (Unix ns): when bytes last came, and
	// since when a started frame is incomplete (0: none). gnet transports
	// keep both for the reaper; the TLS transport keeps lastActive, for
	// a drain's sweep of idle connections.
	lastActive   atomic.Int64
	partialSince atomic.Int64
	gone         atomic.Bool // counted as closed
	reaped       bool        // gnet: the reaper enforces the timeouts

	mu      sync.Mutex
	queue   []*frameBuf
	pending []*slot
	running bool
	paused  bool
	// mutedUntil: throttled; the transport reads nothing before it.
	mutedUntil time.Time
	closed     bool // no more writes: the peer is gone or we dropped it
	failed     bool // we dropped it: frames still queued are discarded too
	// handling: run took a frame off queue and has not finished handling
	// it (it may be waiting out a mute first): the connection is busy
	// though queue and pending may both be empty.
	handling bool
	// ended: closedByPeer ran. A session with work left is then in
	// Server.ending rather than Server.sessions until the work is done.
	ended bool

	// Owned by the goroutine handling frames.
	stage      saslStage
	principal  Principal
	frameBytes int // of the frame being handled, for the budget
	// clientID is the client id of the last request, which the next
	// one most likely repeats (parseRequestHeader then reuses it).
	clientID string
	// frame is the buffer of the frame being handled, which a Produce
	// takes to give back to requestFrames once answered (framepool.go).
	frame *frameBuf
	// sasl is the exchange under way after SaslHandshake, of saslName.
	sasl     saslMechanism
	saslName string
	// user is the relay user logged in (nil: an AccessKey login), read by
	// Server.DropRevokedUsers from any goroutine.
	user atomic.Pointer[RelayUser]
	// cert is the client certificate an SSL listener's login mapped to
	// user (nil for other logins), checked again by DropRevokedUsers.
	cert atomic.Pointer[x509.Certificate]
	// loggedIn is a copy of principal once authenticated, for readers on
	// other goroutines (the shipper view).
	loggedIn atomic.Pointer[Principal]
	// shipper is what the admin listener shows of this connection.
	shipper shipperInfo
	// software is "name/version" from a valid ApiVersions v3+ ("" before),
	// stored with each batch (wal.Entry.ClientSoftware).
	software string
	// partialReserved is what a gnet transport reserved in the budget for
	// the frame it is receiving (owned by the event loop).
	partialReserved int
}

// newSession registers a session for a new connection; reaped says the
// reaper enforces its timeouts (gnet) rather than read deadlines (TLS).
func newSession(srv *Server, ln *listener, t transport, peer string, reaped bool) *session {
	s := &session{srv: srv, ln: ln, t: t, peer: peer, reaped: reaped}
	s.shipper.since = time.Now()
	s.lastActive.Store(time.Now().UnixNano())
	ln.metrics.open.Inc()
	ln.metrics.total.Inc()
	if !ln.opts.sasl() {
		s.stage = saslAuthenticated
		s.authenticated.Store(true)
		if ln.opts.Principal != nil {
			s.principal = *ln.opts.Principal
		}
		p := s.principal
		s.loggedIn.Store(&p)
	}
	// Published last: the shipper view and the drain walk sessions from
	// other goroutines and read what is set above without a lock.
	srv.sessions.Store(s, struct{}{})
	return s
}

// maxFrame is the largest frame the transport may read next.
func (s *session) maxFrame() int {
	if s.authenticated.Load() {
		return s.srv.opts.MaxRequestBytes
	}
	return s.srv.opts.MaxSASLRequestBytes
}

// room reports whether the transport may hand over another frame. When it
// returns false the transport must stop until resume is called.
func (s *session) room() bool { return s.roomFor(0) }

// roomFor is room for a frame of n bytes the transport has yet to read
// into memory (TLS reads a frame's size first): the budget must hold it.
func (s *session) roomFor(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.srv.draining.Load() {
		s.paused = true
		return false
	}
	if !s.mutedUntil.IsZero() {
		if time.Now().Before(s.mutedUntil) {
			s.paused = true
			return false
		}
		s.mutedUntil = time.Time{}
	}
	if len(s.queue)+len(s.pending) >= s.srv.opts.MaxInFlightPerConn || s.t.backlog() > maxWriteBacklog || s.srv.budget.full(s, n) {
		s.paused = true
		return false
	}
	return true
}

// idle reports whether nothing is queued, handled or awaiting an answer.
func (s *session) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.busyLocked()
}

// pushFrame hands over one frame (without its size prefix, in a buffer of
// requestFrames); the session owns it. The transport may already have
// reserved its bytes in the budget (reserved), to bound memory before it
// read the frame whole.
func (s *session) pushFrame(frame *frameBuf, reserved bool) {
	s.mu.Lock()
	if s.failed {
		s.mu.Unlock()
		if reserved {
			s.srv.budget.release(len(frame.b))
		}
		requestFrames.put(frame)
		return
	}
	s.queue = append(s.queue, frame)
	if !reserved {
		s.srv.budget.take(len(frame.b))
	}
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.run()
	}
}

// run handles queued frames in order. Frames already read when the peer
// hangs up are still handled (an acks=0 producer may send and close at
// once, and what it sent must not be lost); only their responses go
// nowhere. Frames queued behind one that failed the connection are not.
func (s *session) run() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.failed {
			dropped := 0
			for _, f := range s.queue {
				dropped += len(f.b)
				requestFrames.put(f) // never handled
			}
			s.queue = nil
			s.running = false
			s.forgetIfDoneLocked()
			s.mu.Unlock()
			s.srv.budget.release(dropped)
			return
		}
		frame := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.handling = true
		until := s.mutedUntil
		s.mu.Unlock()
		// A request read before the mute began (pipelined behind the
		// throttled one) still waits it out, as behind a muted channel.
		if d := time.Until(until); d > 0 {
			time.Sleep(d)
		}
		// The frame's bytes stay in the budget until its response is
		// complete (a Produce's batches are referenced until stored);
		// a frame that takes no place in the order is done now.
		s.frameBytes, s.frame = len(frame.b), frame
		s.handle(frame.b)
		s.frame = nil // a Produce took it, or the collector has it
		s.mu.Lock()
		s.handling = false // a slot in pending holds its place now, if it has one
		s.mu.Unlock()
		s.srv.budget.release(s.frameBytes)
	}
}

// reserve takes the next place in the response order.
func (s *session) reserve(silent bool) *slot {
	sl := &slot{silent: silent, frameBytes: s.frameBytes}
	s.frameBytes = 0 // the slot releases them
	s.mu.Lock()
	s.pending = append(s.pending, sl)
	s.mu.Unlock()
	return sl
}

// complete fills sl and writes every response that is now at the head of
// the order.
func (s *session) complete(sl *slot, buf []byte, closeAfter bool) {
	s.srv.budget.release(sl.frameBytes)
	s.mu.Lock()
	sl.buf, sl.done, sl.closeAfter = buf, true, closeAfter || sl.last
	n := 0
	for ; n < len(s.pending) && s.pending[n].done; n++ {
		p := s.pending[n]
		if s.closed {
			continue
		}
		switch {
		case !p.silent:
			s.t.send(p.buf, p.closeAfter)
		case p.closeAfter:
			// An acks=0 Produce gets no answer, not even its last
			// (a client would read it as one to a request it never
			// sent): the connection closes after what went before.
			s.t.send(nil, true)
		}
		if p.closeAfter {
			s.closed, s.failed = true, true
		}
	}
	if n > 0 {
		rest := copy(s.pending, s.pending[n:])
		clear(s.pending[rest:])
		s.pending = s.pending[:rest]
	}
	resume := s.paused && !s.closed && len(s.queue)+len(s.pending) < s.srv.opts.MaxInFlightPerConn && s.mutedUntil.IsZero()
	if resume {
		s.paused = false
	}
	s.forgetIfDoneLocked()
	s.mu.Unlock()
	if resume {
		s.t.resume()
	}
}

// busyLocked reports whether frames wait, are handled or await their
// answers: idle, Server.drained and Server.ending all ask this. A frame is
// in queue, then handled (taken off queue and handling set under one
// lock), then, if answered, in pending: so run between two frames with
// queue empty has nothing left. s.mu must be held.
func (s *session) busyLocked() bool {
	return len(s.queue) > 0 || len(s.pending) > 0 || s.handling
}

// forgetIfDoneLocked takes an ended session out of Server.ending once its
// work is done. s.mu must be held.
func (s *session) forgetIfDoneLocked() {
	if s.ended && !s.busyLocked() {
		s.srv.ending.Delete(s)
	}
}

// mute stops the transport reading this connection for d (a throttle);
// what was read already is still handled.
func (s *session) mute(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	until := time.Now().Add(d)
	if until.After(s.mutedUntil) {
		s.mutedUntil = until
	}
	s.mu.Unlock()
	time.AfterFunc(d, s.unmute)
}

func (s *session) unmute() {
	s.mu.Lock()
	if !s.mutedUntil.IsZero() && !time.Now().Before(s.mutedUntil) {
		s.mutedUntil = time.Time{}
	}
	resume := s.paused && !s.closed && s.mutedUntil.IsZero() && len(s.queue)+len(s.pending) < s.srv.opts.MaxInFlightPerConn
	// unmute also serves the budget's wake-up; room re-checks it.
	if resume {
		s.paused = false
	}
	s.mu.Unlock()
	if resume {
		s.t.resume()
	}
}

// respond encodes resp for the request h and completes sl with it.
func (s *session) respond(sl *slot, corrID int32, resp kmsg.Response) {
	// Room for a Produce answer of a few partitions, which is most
	// answers: growing from nothing took five allocations.
	s.complete(sl, appendResponse(make([]byte, 0, 128), corrID, resp), false)
}

// fail logs why the connection is dropped and drops it. Responses not yet
// written are discarded, as a Kafka broker does when it closes a connection.
// For closes that are not refusals (timeouts, revoked users); refusals use
// refuseConnection. The line is rate limited per client address as theirs.
func (s *session) fail(format string, args ...any) {
	if ok, suppressed := s.srv.refusals.allowLine(s.peer, "closed", time.Now()); ok {
		s.srv.log.Warn("closing connection", "listener", s.ln.opts.Name, "peer", s.peer, "reason", fmt.Sprintf(format, args...), "suppressed_before", suppressed)
	}
	s.drop()
}

// drop closes the connection; responses not yet written are discarded.
func (s *session) drop() {
	s.mu.Lock()
	already := s.closed
	s.closed, s.failed = true, true
	s.mu.Unlock()
	if !already {
		s.t.close()
	}
}

// principalOf is the logged-in principal, safe from any goroutine (zero
// before login).
func (s *session) principalOf() Principal {
	if p := s.loggedIn.Load(); p != nil {
		return *p
	}
	return Principal{}
}

// closedByPeer is called by the transport when the connection is gone.
// Frames it read are still handled: until they are (and their appends
// done), the session is in Server.ending, which Shutdown waits for.
func (s *session) closedByPeer() {
	s.mu.Lock()
	s.closed, s.ended = true, true
	if s.busyLocked() {
		s.srv.ending.Store(s, struct{}{}) // before it leaves sessions: Shutdown sees it in one
	}
	s.mu.Unlock()
	s.partialSince.Store(0) // no frame is coming any more
	if !s.gone.Swap(true) {
		s.ln.metrics.open.Dec()
	}
	s.srv.budget.forget(s)
	s.srv.sessions.Delete(s)
}

// request is one decoded request on its way through a handler.
type request struct {
	hdr      requestHeader
	kreq     kmsg.Request
	slot     *slot
	received time.Time
	// frame holds the request's bytes (kreq refers to them); a handler
	// that knows when nothing does any more gives it back (Produce).
	frame *frameBuf
}

func (s *session) handle(frame []byte) {
	if s.stage == saslRawToken {
		s.handleRawSASLToken(frame)
		return
	}
	hdr, body, err := parseRequestHeader(frame, s.clientID)
	if err != nil {
		s.refuseConnection(RefusalMalformedFrame, "malformed request header: %v", err)
		return
	}
	if hdr.clientID != s.clientID {
		s.clientID = hdr.clientID
		s.shipper.setClient(hdr.clientID)
	}
	api, ok := apis[hdr.key]
	if !ok {
		s.refuseConnection(RefusalProtocol, "request for API key %d (%s), which this relay does not serve", hdr.key, kmsg.NameForKey(hdr.key))
		return
	}
	if api.handle == nil {
		s.refuseConnection(RefusalProtocol, "%s request: this relay only accepts produce requests", kmsg.NameForKey(hdr.key))
		return
	}
	if s.stage != saslAuthenticated && !api.beforeAuth {
		// A shipper without SASL settings on a SASL listener.
		s.refuseConnection(RefusalAuthentication, "%s request before SASL authentication", kmsg.NameForKey(hdr.key))
		return
	}
	if hdr.version < api.min || hdr.version > api.max {
		if hdr.key == 18 {
			s.respondUnsupportedApiVersions(hdr)
			return
		}
		s.refuseConnection(RefusalProtocol, "%s v%d is not supported (v%d to v%d are)", kmsg.NameForKey(hdr.key), hdr.version, api.min, api.max)
		return
	}
	kreq := kmsg.RequestForKey(hdr.key)
	kreq.SetVersion(hdr.version)
	if kreq.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			s.refuseConnection(RefusalMalformedFrame, "malformed %s v%d request header: %v", kmsg.NameForKey(hdr.key), hdr.version, err)
			return
		}
	}
	if err := kreq.ReadFrom(body); err != nil {
		s.refuseConnection(RefusalMalformedFrame, "malformed %s v%d request: %v", kmsg.NameForKey(hdr.key), hdr.version, err)
		return
	}
	countRequest(hdr.key, len(frame))
	if av, ok := kreq.(*kmsg.ApiVersionsRequest); ok && av.Version >= 3 {
		s.shipper.setSoftware(av.ClientSoftwareName, av.ClientSoftwareVersion)
	}
	if mreq, ok := kreq.(*kmsg.MetadataRequest); ok {
		s.learnTopicIDs(mreq)
	}
	r := &request{hdr: hdr, kreq: kreq, received: time.Now(), frame: s.frame}
	silent := false
	if p, ok := kreq.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
		silent = true
	}
	r.slot = s.reserve(silent)
	if s.srv.leaving.Load() && (hdr.key == 0 || hdr.key == 3) {
		// Draining: this answer is the connection's last, and a Produce
		// its client can retry goes elsewhere (see Server.Drain).
		r.slot.last = true
		if hdr.key == 0 && !silent {
			s.refuseProduce(r)
			return
		}
	}
	api.handle(s, r)
}

// api is what the relay serves of one Kafka API key.
type api struct {
	min, max   int16
	beforeAuth bool // may be sent before SASL authentication completes
	// handle serves the request; nil for an API only advertised (Fetch).
	handle func(*session, *request)
}

// apis holds the served API keys; each NN_name.go file registers its own.
var apis = map[int16]api{}

func register(key int16, a api) { apis[key] = a }
