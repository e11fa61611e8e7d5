package engine

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// tlsHandshakeTimeout bounds a TLS handshake, so a peer that connects and
// says nothing does not hold a goroutine forever.
const tlsHandshakeTimeout = 10 * time.Second

// startTLS serves a SASL_SSL listener with crypto/tls and a reading and a
// writing goroutine per connection (measured faster than bridging TLS onto
// gnet's loops); both feed the same session core as gnet.
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
		for {
			c, err := tcp.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					s.log.Error("accept failed", "listener", ln.opts.Name, "err", err)
				}
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
	_ = c.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := c.Handshake(); err != nil {
		s.refuseHandshake(ln, peer, err)
		return
	}
	_ = c.SetDeadline(time.Time{})

	t := newTLSTransport(c)
	sess := newSession(s, ln, t, peer, false)
	t.drained = sess.unmute
	go t.writeLoop()
	defer t.close()
	defer sess.closedByPeer()
	if ln.opts.Protocol == SSL && !sess.certLogin(c.ConnectionState().PeerCertificates) {
		return
	}

	// waitRoom waits until the session takes a frame of n bytes (0: any
	// next frame); false when the connection or the listener closes.
	waitRoom := func(n int) bool {
		for !sess.roomFor(n) {
			select {
			case <-t.resumed:
			case <-t.closed:
				return false
			case <-stopping:
				return false
			}
		}
		return true
	}
	r := bufio.NewReaderSize(c, 64<<10)
	var hdr [4]byte
	for {
		if !waitRoom(0) {
			return
		}
		// Idle between requests, a deadline of IdleTimeout; once a
		// request started, PartialFrameTimeout for the rest of it.
		if !readIdle(c, r, hdr[:1], s.opts.IdleTimeout, sess) {
			return
		}
		sess.lastActive.Store(time.Now().UnixNano())
		_ = c.SetReadDeadline(time.Now().Add(s.opts.PartialFrameTimeout))
		if _, err := io.ReadFull(r, hdr[1:]); err != nil {
			s.logReadEnd(ln, peer, err, "partial_frame_timeout")
			return
		}
		size := int(int32(binary.BigEndian.Uint32(hdr[:])))
		if size < 0 || size > sess.maxFrame() {
			sess.refuseConnection(RefusalOversizedFrame, "request frame of %d bytes exceeds the limit of %d", size, sess.maxFrame())
			return
		}
		// The frame is allocated whole: take its room in the budget
		// first, waiting for it.
		for !s.budget.tryTake(size) {
			if !waitRoom(size) {
				return
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(s.opts.PartialFrameTimeout))
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			s.budget.release(size)
			s.logReadEnd(ln, peer, err, "partial_frame_timeout")
			return
		}
		sess.lastActive.Store(time.Now().UnixNano())
		sess.pushFrame(frame, true)
	}
}

// tlsTransport queues responses for a writing goroutine, so a slow reader
// never blocks whoever completes a response.
type tlsTransport struct {
	c       net.Conn
	mu      sync.Mutex
	out     [][]byte
	queued  int // bytes in out and being written
	closeAt int // index in out after which to close; -1 for none
	// drained is called once a batch of answers is written: the session
	// may read again if it stopped for the backlog.
	drained func()
	wake    chan struct{}
	resumed chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func newTLSTransport(c net.Conn) *tlsTransport {
	return &tlsTransport{c: c, closeAt: -1, wake: make(chan struct{}, 1), resumed: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (t *tlsTransport) send(b []byte, closeAfter bool) {
	t.mu.Lock()
	t.out = append(t.out, b)
	t.queued += len(b)
	if closeAfter && t.closeAt < 0 {
		t.closeAt = len(t.out)
	}
	t.mu.Unlock()
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

func (t *tlsTransport) writeLoop() {
	w := bufio.NewWriterSize(t.c, 64<<10)
	for {
		select {
		case <-t.wake:
		case <-t.closed:
			return
		}
		t.mu.Lock()
		out, closeAt := t.out, t.closeAt
		t.out, t.closeAt = nil, -1
		t.mu.Unlock()
		for i, b := range out {
			if _, err := w.Write(b); err != nil {
				t.close()
				return
			}
			if i+1 == closeAt {
				_ = w.Flush()
				t.close()
				return
			}
		}
		if err := w.Flush(); err != nil {
			t.close()
			return
		}
		n := 0
		for _, b := range out {
			n += len(b)
		}
		t.mu.Lock()
		t.queued -= n
		t.mu.Unlock()
		if t.drained != nil {
			t.drained()
		}
	}
}

// logReadEnd says why a TLS connection's reading ended when it was a
// timeout; a peer hanging up is not worth a line.
func (s *Server) logReadEnd(ln *listener, peer string, err error, which string) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.log.Warn("closing connection", "listener", ln.opts.Name, "peer", peer, "reason", which+" passed")
	}
}

// readIdle reads the first byte of the next request. A connection silent
// for idle is closed only if it awaits no answer: a request slower than
// idle must not cost its connection. It reports whether to go on.
func readIdle(c *tls.Conn, r io.Reader, b []byte, idle time.Duration, sess *session) bool {
	for {
		_ = c.SetReadDeadline(time.Now().Add(idle))
		_, err := io.ReadFull(r, b)
		if err == nil {
			return true
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !sess.idle() {
			continue
		}
		sess.srv.logReadEnd(sess.ln, sess.peer, err, "idle_timeout")
		return false
	}
}
