package engine

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// tlsHandshakeTimeout bounds a TLS handshake, so a peer that connects and
// says nothing does not hold a goroutine forever.
const tlsHandshakeTimeout = 10 * time.Second

// A TLS listener whose accept fails for want of a resource (the process's
// or the system's limit on open files, socket buffers, memory: a flood of
// connections) tries again after acceptRetryFirst, doubling up to
// acceptRetryMax, as net/http's Server does: the connection waits in the
// backlog meanwhile, and the listener lives on.
const (
	acceptRetryFirst = 5 * time.Millisecond
	acceptRetryMax   = time.Second
)

// acceptMayRecover reports whether an accept error is a lack of a resource
// that may come back (accept(2): EMFILE, ENFILE, ENOBUFS, ENOMEM).
func acceptMayRecover(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// startTLS serves a SASL_SSL listener with crypto/tls and a reading
// goroutine per connection, plus a writing one while answers wait to be
// written (measured faster than bridging TLS onto gnet's loops); both feed
// the same session core as gnet.
func (s *Server) startTLS(ln *listener) error {
	tcp, err := net.Listen("tcp", ln.opts.Bind)
	if err != nil {
		return err
	}
	if err := ln.bound(tcp.Addr().String()); err != nil {
		tcp.Close()
		return err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	done := make(chan struct{})
	stopping := make(chan struct{}) // wakes readers waiting for room
	go func() {
		var wait time.Duration // since accepts began to fail for want of a resource
		for {
			c, err := tcp.Accept()
			switch {
			case err == nil:
				if wait > 0 {
					s.log.Info("accepting again", "listener", ln.opts.Name)
					wait = 0
				}
			case errors.Is(err, net.ErrClosed):
				close(done)
				return
			case acceptMayRecover(err):
				if wait == 0 {
					s.log.Error("accept failed: retrying until it succeeds", "listener", ln.opts.Name, "err", err)
				}
				wait = min(max(2*wait, acceptRetryFirst), acceptRetryMax)
				time.Sleep(wait)
				continue
			default:
				// Closed, not left listening: a socket no one accepts
				// from holds every new connection until its client
				// times out.
				s.log.Error("accept failed: listener stopped, not ready until restarted", "listener", ln.opts.Name, "err", err)
				s.markDown(ln)
				_ = tcp.Close()
				close(done)
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serveTLS(ln, c, stopping)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	ln.stop = func(ctx context.Context) error {
		err := tcp.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil // closed when its accepts ended (ln.down)
		}
		<-done
		close(stopping)
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		served := make(chan struct{})
		go func() {
			wg.Wait()
			close(served)
		}()
		select {
		case <-served:
		case <-ctx.Done():
			return errors.Join(err, fmt.Errorf("connections still closing: %w", ctx.Err()))
		}
		return err
	}
	return nil
}

// serveTLS serves one connection of a TLS listener: the PROXY protocol
// header if the listener takes one, the handshake, then its requests.
func (s *Server) serveTLS(ln *listener, raw net.Conn, stopping <-chan struct{}) {
	peer := raw.RemoteAddr().String()
	if ln.proxyTrusted != nil {
		var ok bool
		if raw, peer, ok = s.acceptProxy(ln, raw); !ok {
			return
		}
	}
	c := tls.Server(raw, ln.opts.TLS)
	defer c.Close()
	r := s.openTLS(ln, c, peer, stopping)
	if r == nil {
		return
	}
	defer r.t.close()
	defer r.sess.closedByPeer()
	// This loop's frames stay small: between requests the goroutine
	// parks in awaitRequest, with a stack the collector can shrink (see
	// tls_idle.go); readRequest's larger frame is gone by then.
	for r.waitRoom(0) && r.awaitRequest() && r.readRequest() {
	}
}

// tlsReader is the reading side of one TLS connection, owned by its
// goroutine.
type tlsReader struct {
	s        *Server
	ln       *listener
	c        *tls.Conn
	raw      syscall.RawConn // c's socket; nil: wait inside crypto/tls
	t        *tlsTransport
	sess     *session
	stopping <-chan struct{}
	hdr      [4]byte // the next frame's size
	have     bool    // awaitRequest already read hdr[0]
}

// openTLS completes the handshake and opens the connection's session
// for peer (the socket's remote address, or the PROXY header's source);
// nil when the connection ends there.
func (s *Server) openTLS(ln *listener, c *tls.Conn, peer string, stopping <-chan struct{}) *tlsReader {
	_ = c.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := c.Handshake(); err != nil {
		select {
		case <-stopping: // the listener's stop closed it: not the client's doing
			s.log.Debug("TLS handshake cut by the listener's stop", "listener", ln.opts.Name, "client", peer)
		default:
			s.refuseHandshake(ln, peer, err)
		}
		return nil
	}
	_ = c.SetDeadline(time.Time{})

	t := newTLSTransport(c, s.opts.TLSIdleAfter)
	sess := newSession(s, ln, t, peer, false)
	t.drained = sess.unmute
	if ln.opts.Protocol == SSL && !sess.certLogin(c.ConnectionState().PeerCertificates) {
		sess.closedByPeer()
		t.close()
		return nil
	}
	return &tlsReader{s: s, ln: ln, c: c, raw: rawConnOf(c), t: t, sess: sess, stopping: stopping}
}

// waitRoom waits until the session takes a frame of n bytes (0: any next
// frame); false when the connection or the listener closes.
func (r *tlsReader) waitRoom(n int) bool {
	for !r.sess.roomFor(n) {
		select {
		case <-r.t.resumed:
		case <-r.t.closed:
			return false
		case <-r.stopping:
			return false
		}
	}
	return true
}

// readRequest reads one request frame and hands it to the session. No
// read buffer of our own: crypto/tls already holds a whole record and
// hands it out in pieces, so the size is read from it directly and an
// idle connection keeps nothing but the TLS state.
func (r *tlsReader) readRequest() bool {
	s, c, sess := r.s, r.c, r.sess
	// Idle between requests, a deadline of IdleTimeout; once a request
	// started, PartialFrameTimeout for the rest of it.
	if !r.have && !readIdle(c, r.hdr[:1], s.opts.IdleTimeout, sess) {
		return false
	}
	r.have = false
	sess.lastActive.Store(time.Now().UnixNano())
	_ = c.SetReadDeadline(time.Now().Add(s.opts.PartialFrameTimeout))
	if _, err := io.ReadFull(c, r.hdr[1:]); err != nil {
		s.logReadEnd(r.ln, sess.peer, err, "partial_frame_timeout")
		return false
	}
	size := int(int32(binary.BigEndian.Uint32(r.hdr[:])))
	if size < 0 || size > sess.maxFrame() {
		sess.refuseConnection(RefusalOversizedFrame, "request frame of %d bytes exceeds the limit of %d", size, sess.maxFrame())
		return false
	}
	// The frame is allocated whole: take its room in the budget first,
	// waiting for it.
	for !s.budget.tryTake(size) {
		if !r.waitRoom(size) {
			return false
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(s.opts.PartialFrameTimeout))
	frame := requestFrames.get(size)
	if _, err := io.ReadFull(c, frame.b); err != nil {
		requestFrames.put(frame)
		s.budget.release(size)
		s.logReadEnd(r.ln, sess.peer, err, "partial_frame_timeout")
		return false
	}
	sess.lastActive.Store(time.Now().UnixNano())
	sess.pushFrame(frame, true)
	return true
}

// tlsTransport queues responses for a writing goroutine, so a slow reader
// never blocks whoever completes a response. The writer runs only while
// there is something to write: an idle connection has none.
type tlsTransport struct {
	c       net.Conn
	mu      sync.Mutex // protects out, queued, closeAt and writing
	out     [][]byte
	queued  int  // bytes in out and being written
	closeAt int  // index in out after which to close; -1 for none
	writing bool // a writer goroutine is running (or the connection is closed)
	// drained is called once a batch of answers is written: the session
	// may read again if it stopped for the backlog.
	drained func()
	wake    chan struct{} // a lingering writer has work
	linger  time.Duration // how long the writer waits for more work
	resumed chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func newTLSTransport(c net.Conn, linger time.Duration) *tlsTransport {
	return &tlsTransport{c: c, closeAt: -1, linger: linger, wake: make(chan struct{}, 1), resumed: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (t *tlsTransport) send(b []byte, closeAfter bool) {
	t.mu.Lock()
	t.out = append(t.out, b)
	t.queued += len(b)
	if closeAfter && t.closeAt < 0 {
		t.closeAt = len(t.out)
	}
	start := !t.writing
	t.writing = true
	t.mu.Unlock()
	if start {
		go t.write()
		return
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *tlsTransport) backlog() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.queued
}

func (t *tlsTransport) resume() {
	select {
	case t.resumed <- struct{}{}:
	default:
	}
}

func (t *tlsTransport) close() {
	t.once.Do(func() {
		close(t.closed)
		t.c.Close()
	})
}

// write writes what is queued, in batches, until nothing is for linger;
// then the goroutine ends: a busy connection keeps its writer (a new one
// per answer would grow a fresh stack through crypto/tls each time), an
// idle one has none. After a write error or a closing answer the
// connection is closed and writing stays set, so no other writer starts.
func (t *tlsTransport) write() {
	linger := time.NewTimer(t.linger)
	defer linger.Stop()
	for {
		t.mu.Lock()
		out, closeAt := t.out, t.closeAt
		t.out, t.closeAt = nil, -1
		t.mu.Unlock()
		if len(out) == 0 {
			linger.Reset(t.linger)
			select {
			case <-t.wake:
				continue
			case <-t.closed:
				return
			case <-linger.C:
			}
			t.mu.Lock()
			if len(t.out) == 0 {
				t.writing = false
				t.mu.Unlock()
				return
			}
			t.mu.Unlock()
			continue
		}
		if closeAt >= 0 {
			out = out[:closeAt]
		}
		n, err := writeBatch(t.c, out)
		if err != nil || closeAt >= 0 {
			t.close()
			return
		}
		t.mu.Lock()
		t.queued -= n
		t.mu.Unlock()
		if t.drained != nil {
			t.drained()
		}
	}
}

// writeBufs pools the buffers that join a batch of answers into one write
// (one TLS record and one syscall, rather than one per answer).
var writeBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledWriteBuf bounds what writeBufs keeps: a rare large answer
// (Metadata of many topics) is not held on to.
const maxPooledWriteBuf = 256 << 10

// writeBatch writes bufs to w in one Write and returns their length.
func writeBatch(w io.Writer, bufs [][]byte) (int, error) {
	if len(bufs) == 1 {
		return w.Write(bufs[0])
	}
	p := writeBufs.Get().(*[]byte)
	b := (*p)[:0]
	for _, x := range bufs {
		b = append(b, x...)
	}
	n, err := w.Write(b)
	if cap(b) <= maxPooledWriteBuf {
		*p = b
		writeBufs.Put(p)
	}
	return n, err
}

// logReadEnd says why a TLS connection's reading ended when it was a
// timeout; a peer hanging up is not worth a line.
func (s *Server) logReadEnd(ln *listener, peer string, err error, which string) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.log.Warn("closing connection", "listener", ln.opts.Name, "peer", peer, "reason", which+" passed")
	}
}
