package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	gerrors "github.com/panjf2000/gnet/v2/pkg/errors"
	"github.com/panjf2000/gnet/v2/pkg/logging"
	"golang.org/x/sys/unix"
)

// gnetListener serves a PLAINTEXT or SASL_PLAINTEXT listener on gnet event
// loops. The loops only split bytes into frames; sessions do the rest.
type gnetListener struct {
	gnet.BuiltinEventEngine
	srv     *Server
	ln      *listener
	eng     gnet.Engine
	booted  chan struct{}
	bootErr error
	sockMu  sync.Mutex // protects sock
	// sock is a duplicate of the listening socket's descriptor, taken at
	// boot (gnet's own is not ours to read once it runs), shut and closed
	// by stop, closed when gnet stops by itself (an accept error): held
	// after that, the socket would take connections no one accepts. -1:
	// none.
	sock int
	// stopping: stop has begun; gnet's errors about the listening socket
	// it shut are expected from here on.
	stopping atomic.Bool
}

func (s *Server) startGnet(ln *listener) error {
	g := &gnetListener{srv: s, ln: ln, booted: make(chan struct{}), sock: -1}
	loops := s.opts.EventLoops
	if loops <= 0 {
		loops = runtime.GOMAXPROCS(0)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- gnet.Run(g, "tcp://"+ln.opts.Bind,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(loops),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithReuseAddr(true),
			gnet.WithLogger(gnetLogger{s.log, &g.stopping}),
		)
	}()
	select {
	case err := <-errc:
		if err == nil {
			err = fmt.Errorf("gnet stopped at start")
		}
		return err
	case <-g.booted:
	}
	if g.bootErr != nil {
		<-errc
		return g.bootErr
	}
	stopped := make(chan struct{}) // gnet.Run returned
	go func() {
		<-errc // nil when gnet ended its engine itself: its log says why
		g.closeSock()
		if !g.stopping.Load() {
			s.markDown(ln)
			s.log.Error("listener stopped accepting connections: gnet ended its engine (see its error above); not ready until restarted",
				"listener", ln.opts.Name, "addr", ln.addr)
		}
		close(stopped)
	}()
	ln.stop = func(ctx context.Context) error { return g.stop(ctx, stopped) }
	return nil
}

// takeSock returns sock (-1: none) and leaves none: whoever takes it
// closes it, once.
func (g *gnetListener) takeSock() int {
	g.sockMu.Lock()
	defer g.sockMu.Unlock()
	fd := g.sock
	g.sock = -1
	return fd
}

// closeSock closes sock, if still open.
func (g *gnetListener) closeSock() {
	if fd := g.takeSock(); fd >= 0 {
		_ = unix.Close(fd)
	}
}

// shutSock shuts the listening socket through sock and closes sock; it
// reports whether the socket was shut.
func (g *gnetListener) shutSock() bool {
	fd := g.takeSock()
	if fd < 0 {
		return false
	}
	err := unix.Shutdown(fd, unix.SHUT_RD)
	_ = unix.Close(fd)
	return err == nil
}

// acceptorStopWait bounds how long stop waits for gnet's acceptor to
// notice its socket was shut before it stops gnet itself.
const acceptorStopWait = time.Second

// stop stops accepting first, then stops gnet. gnet's own Stop signals its
// acceptor and its event loops at the same time: a loop can exit while
// the acceptor still accepts, and a connection it accepts then is handed
// to the gone loop, never served and never closed while the process
// lives. A client that reconnects the moment its connection closes (sarama
// does, and a balancer still sends it to this node) lands there and waits
// out its read timeout, 30 s per request for the Beats. So the listening
// socket is shut first (shutdown(2) on a dup acts on the one socket):
// the kernel refuses new connections and resets those not yet accepted,
// gnet's acceptor fails its next accept and shuts gnet down, and the loops
// get their stop signal after every connection it handed over, which they
// then close. (Linux stops a listening socket on shutdown(2); where it
// fails, stop falls back to gnet's Stop alone.)
func (g *gnetListener) stop(ctx context.Context, stopped <-chan struct{}) error {
	g.stopping.Store(true)
	if g.shutSock() {
		select {
		case <-stopped:
			return nil
		case <-time.After(acceptorStopWait):
		case <-ctx.Done():
		}
	}
	// ErrEngineInShutdown: gnet ended its engine by itself (an accept
	// error) or is ending it now; there is nothing left to stop.
	if err := g.eng.Stop(ctx); err != nil && !errors.Is(err, gerrors.ErrEngineInShutdown) {
		return err
	}
	<-stopped
	return nil
}

// boundAddr reads the address of the listening socket fd, which differs
// from the configured one when the port was 0.
func boundAddr(fd int) (string, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", fmt.Errorf("cannot read listener address: %w", err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String(), nil
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String(), nil
	}
	return "", fmt.Errorf("unexpected listener address %T", sa)
}

// OnBoot runs before gnet accepts any connection: the address and what
// Metadata advertises are known before a client can ask.
func (g *gnetListener) OnBoot(eng gnet.Engine) gnet.Action {
	g.eng = eng
	defer close(g.booted)
	fd, err := eng.Dup()
	if err != nil {
		g.bootErr = fmt.Errorf("cannot read listener address: %w", err)
		return gnet.Shutdown
	}
	addr, err := boundAddr(fd)
	if err == nil {
		err = g.ln.bound(addr)
	}
	if err != nil {
		_ = unix.Close(fd)
		g.bootErr = err
		return gnet.Shutdown
	}
	g.sock = fd
	return gnet.None
}

func (g *gnetListener) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if g.ln.proxyTrusted != nil {
		return nil, g.openProxy(c) // the session starts after the header
	}
	c.SetContext(newSession(g.srv, g.ln, newGnetTransport(c), c.RemoteAddr().String(), true))
	return nil, gnet.None
}

// OnClose hands over the whole frames still buffered, even past the
// in-flight limit: a producer may send with acks=0 and hang up at once, and
// what it sent must still be stored.
func (g *gnetListener) OnClose(c gnet.Conn, _ error) gnet.Action {
	if p, ok := c.Context().(*gnetProxyPending); ok {
		g.closedBeforeHeader(c, p)
		return gnet.None
	}
	if s, ok := c.Context().(*session); ok {
		g.readFrames(c, s, true)
		if s.partialReserved > 0 {
			s.srv.budget.release(s.partialReserved)
			s.partialReserved = 0
		}
		s.closedByPeer()
	}
	return gnet.None
}

// OnTraffic hands every whole frame to the session while it has room.
// Bytes it leaves stay in gnet's buffer; the session's resume wakes this
// again when responses drain.
func (g *gnetListener) OnTraffic(c gnet.Conn) gnet.Action {
	if p, ok := c.Context().(*gnetProxyPending); ok {
		s, closeIt := g.proxyHeader(c, p)
		switch {
		case closeIt:
			return gnet.Close
		case s == nil:
			return gnet.None // the header is incomplete
		}
	}
	s := c.Context().(*session)
	s.lastActive.Store(time.Now().UnixNano())
	return g.readFrames(c, s, false)
}

// maxUnread bounds what a connection may have sent, beyond the frame it is
// sending, while its session takes nothing (in-flight limit, budget,
// throttle, answers not read): gnet reads it all, so this is the only
// bound there is. It is above what pipelining clients keep in flight
// (Java's five requests of max.request.size 1 MB).
const maxUnread = 8 << 20

// readFrames moves whole frames from gnet's buffer to s, while s has room
// or, with all, until none is left (then within the budget, so a peer that
// flooded and hung up cannot make the relay work through all of it).
func (g *gnetListener) readFrames(c gnet.Conn, s *session, all bool) gnet.Action {
	defer func() {
		if all {
			return
		}
		limit := maxUnread
		if hdr, err := c.Peek(4); err == nil {
			limit += max(0, int(int32(binary.BigEndian.Uint32(hdr))))
		}
		if n := c.InboundBuffered(); n > limit {
			s.refuseConnection(RefusalProtocol, "%d bytes sent beyond what may wait for room (in flight, budget, throttle, or answers not read)", n)
			_ = c.Close()
		}
	}()
	for (all && !s.srv.budget.spent()) || s.room() {
		hdr, err := c.Peek(4)
		if err != nil {
			s.markPartial(c.InboundBuffered() > 0)
			return gnet.None // fewer than 4 bytes so far
		}
		size := int(int32(binary.BigEndian.Uint32(hdr)))
		if size < 0 || size > s.maxFrame() {
			s.refuseConnection(RefusalOversizedFrame, "request frame of %d bytes exceeds the limit of %d", size, s.maxFrame())
			return gnet.Close
		}
		if c.InboundBuffered() < 4+size {
			s.markPartial(true)
			// gnet buffers the frame as it comes: reserve it in the
			// budget now, and turn away a large one that does not fit
			// (gnet cannot be told to stop reading).
			if s.partialReserved == 0 && size > 0 {
				if !s.srv.budget.tryTake(size) {
					if size > maxUnreservedFrame {
						s.refuseConnection(RefusalUnavailable, "request of %d bytes does not fit the memory budget now (max_buffered_bytes)", size)
						return gnet.Close
					}
				} else {
					s.partialReserved = size
				}
			}
			return gnet.None
		}
		s.markPartial(false)
		_, _ = c.Discard(4)
		// Read straight into the frame: Next would copy a frame that
		// spans gnet's buffers into a buffer of its own first.
		frame := requestFrames.get(size)
		if n, _ := c.Read(frame.b); n != size {
			requestFrames.put(frame)
			s.refuseConnection(RefusalMalformedFrame, "cannot read frame: %d of %d bytes", n, size)
			return gnet.Close
		}
		reserved := s.partialReserved == size && size > 0
		if !reserved && s.partialReserved > 0 {
			s.srv.budget.release(s.partialReserved)
		}
		s.partialReserved = 0
		s.pushFrame(frame, reserved)
	}
	return gnet.None
}

// maxUnreservedFrame: a frame up to this size may be received while the
// budget is full (it waits in gnet's buffer within maxUnread); a larger one
// is refused then.
const maxUnreservedFrame = 1 << 20

// gnetTransport writes through gnet's loop-safe asynchronous calls. The
// answers that complete while one is on its way to the event loop go out
// together with one writev after it, not one write(2) each: a write on
// loopback costs about as much as reading a 64 KiB request (the kernel
// delivers it to the peer within the call), and a pipelining producer's
// answers often complete together (a WAL group commit answers them at
// once). Safe for concurrent use.
type gnetTransport struct {
	c       gnet.Conn
	wroteFn gnet.AsyncCallback // wrote, made once

	mu sync.Mutex // protects the fields below
	// busy: a write is on its way to the loop, and its callback writes
	// queued next; dead: the connection is gone, nothing is written.
	busy, dead bool
	queued     [][]byte // answers in order, after the one on its way
	closeAfter bool     // close once everything sent is written
}

func newGnetTransport(c gnet.Conn) *gnetTransport {
	t := &gnetTransport{c: c}
	t.wroteFn = t.wrote
	return t
}

func (t *gnetTransport) send(b []byte, closeAfter bool) {
	t.mu.Lock()
	if t.dead {
		t.mu.Unlock()
		return
	}
	t.closeAfter = t.closeAfter || closeAfter
	if t.busy {
		t.queued = append(t.queued, b)
		t.mu.Unlock()
		return
	}
	t.busy = true
	t.mu.Unlock()
	if err := t.c.AsyncWrite(b, t.wroteFn); err != nil {
		t.kill() // the loop is gone, and the connection with it
	}
}

// wrote runs on the event loop once a write is done: it writes what was
// queued meanwhile, until nothing is, then lets the next send write.
func (t *gnetTransport) wrote(c gnet.Conn, err error) error {
	for err == nil {
		t.mu.Lock()
		bs, closeAfter := t.queued, t.closeAfter
		if len(bs) == 0 {
			t.busy = false
			t.mu.Unlock()
			if closeAfter {
				t.kill()
				return c.Close()
			}
			return nil
		}
		t.queued = nil // an idle connection keeps no array
		t.mu.Unlock()
		// Writev writes what it can now and buffers the rest (a copy),
		// at most iovMax answers a call.
		for len(bs) > 0 && err == nil {
			n := min(len(bs), iovMax)
			_, err = c.Writev(bs[:n])
			bs = bs[n:]
		}
	}
	t.kill()
	return nil
}

// iovMax is how many buffers one writev(2) takes (Linux's UIO_MAXIOV,
// IOV_MAX in <limits.h>): past it the call fails with EINVAL, and gnet's
// Writev hands the whole slice to one call and closes the connection on
// the error. A burst of pipelined requests read in one OnTraffic can
// leave more answers than that queued behind one write.
const iovMax = 1024

// kill drops what is queued and anything sent later.
func (t *gnetTransport) kill() {
	t.mu.Lock()
	t.dead, t.queued = true, nil
	t.mu.Unlock()
}

func (t *gnetTransport) resume()      { _ = t.c.Wake(nil) }
func (t *gnetTransport) close()       { _ = t.c.Close() }
func (t *gnetTransport) backlog() int { return t.c.OutboundBuffered() }

// gnetLogger sends gnet's own log lines to slog. Once its listener is
// stopping, errors are debug lines: gnet reports the socket stop shut
// (its accept fails, and it shuts itself down "with error").
type gnetLogger struct {
	l        *slog.Logger
	stopping *atomic.Bool
}

var _ logging.Logger = gnetLogger{}

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) {
	if g.stopping.Load() {
		g.l.Debug("gnet: " + fmt.Sprintf(f, a...))
		return
	}
	g.l.Error("gnet: " + fmt.Sprintf(f, a...))
}
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }

// markPartial notes whether a request is half-received, for the reaper's
// partial_frame_timeout; a frame waiting only for room is not partial.
func (s *session) markPartial(partial bool) {
	switch {
	case !partial:
		s.partialSince.Store(0)
	case s.partialSince.Load() == 0:
		s.partialSince.Store(time.Now().UnixNano())
	}
}
