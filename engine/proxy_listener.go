package engine

// A listener that takes the PROXY protocol (ListenerOptions.ProxyProtocol):
// a connection from a trusted load balancer starts with a header naming
// the client (proxy_protocol.go), read before anything else (before the
// TLS handshake on a TLS listener); its source address is the session's
// peer. A connection from anywhere else, or without a valid header, is
// refused: counted in slsrelay_refusals_total{reason="proxy_protocol"}
// and closed.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// The wait for a header is bounded by Options.PartialFrameTimeout: a
// balancer sends it at once (spec 2.1: "sent immediately and at once upon
// the connection establishment"), so a connection without it is as stuck
// as one that stopped in the middle of a request.

// proxyMaxHeader is the longest header: v2's 16 bytes and a 16-bit length.
const proxyMaxHeader = proxyV2Fixed + 0xffff

// trustsProxy reports whether a connection from remote may send a PROXY
// header to ln.
func (ln *listener) trustsProxy(remote net.Addr) bool {
	ta, ok := remote.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := ta.AddrPort().Addr().Unmap()
	for _, p := range ln.proxyTrusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// proxyPeer is the session's peer: the header's source, or the
// connection's own address when the header names none.
func proxyPeer(src netip.AddrPort, remote net.Addr) string {
	if src.IsValid() {
		return src.String()
	}
	return remote.String()
}

// refuseProxy counts and logs a connection refused before its session
// exists: from an untrusted address, or without a valid header.
func (s *Server) refuseProxy(ln *listener, peer, detail string) {
	s.refuseEarly(ln, peer, RefusalProxyProtocol, "closing connection", detail, refusalHints[RefusalProxyProtocol])
}

// gnetProxyPending is the context of a gnet connection whose header has
// not arrived yet.
type gnetProxyPending struct {
	// done is set when the header was read or the connection refused or
	// closed; timeout closes the connection otherwise.
	done    atomic.Bool
	timeout *time.Timer // set in OnOpen, before any other event
}

// finish marks the wait over, and reports whether it was still on.
func (p *gnetProxyPending) finish() bool {
	if !p.done.CompareAndSwap(false, true) {
		return false
	}
	p.timeout.Stop()
	return true
}

// openProxy starts a gnet connection on a PROXY protocol listener: it
// refuses an untrusted source, else waits for the header.
func (g *gnetListener) openProxy(c gnet.Conn) gnet.Action {
	if !g.ln.trustsProxy(c.RemoteAddr()) {
		g.srv.refuseProxy(g.ln, c.RemoteAddr().String(), "connection from an address not in proxy_protocol.trusted_cidrs")
		return gnet.Close
	}
	p := &gnetProxyPending{}
	c.SetContext(p)
	peer := c.RemoteAddr().String()
	wait := g.srv.opts.PartialFrameTimeout
	p.timeout = time.AfterFunc(wait, func() {
		if p.done.CompareAndSwap(false, true) {
			g.srv.refuseProxy(g.ln, peer, fmt.Sprintf("no complete PROXY protocol header within %v (partial_frame_timeout)", wait))
			_ = c.Close()
		}
	})
	return gnet.None
}

// proxyHeader reads the header of a pending gnet connection from what
// gnet buffered. It returns the session once the header is read (nil
// while it is incomplete) and whether to close the connection.
func (g *gnetListener) proxyHeader(c gnet.Conn, p *gnetProxyPending) (*session, bool) {
	buf, _ := c.Peek(min(c.InboundBuffered(), proxyMaxHeader))
	src, n, err := parseProxyHeader(buf)
	if errors.Is(err, errProxyIncomplete) {
		return nil, false
	}
	if !p.finish() {
		return nil, true // the timeout refused it
	}
	if err != nil {
		g.srv.refuseProxy(g.ln, c.RemoteAddr().String(), err.Error())
		return nil, true
	}
	_, _ = c.Discard(n)
	s := newSession(g.srv, g.ln, newGnetTransport(c), proxyPeer(src, c.RemoteAddr()), true)
	c.SetContext(s)
	return s, false
}

// closedBeforeHeader: a pending gnet connection closed. Part of a header
// is a refusal; nothing at all is not (a balancer's TCP health check).
func (g *gnetListener) closedBeforeHeader(c gnet.Conn, p *gnetProxyPending) {
	if p.finish() && c.InboundBuffered() > 0 {
		g.srv.refuseProxy(g.ln, c.RemoteAddr().String(), fmt.Sprintf("connection ended after %d bytes, before a complete PROXY protocol header", c.InboundBuffered()))
	}
}

// acceptProxy reads the header of a TLS listener's connection before the
// handshake. It returns the connection to hand to TLS (the bytes read past
// the header first) and the client's address; ok false: refused and
// closed.
func (s *Server) acceptProxy(ln *listener, c net.Conn) (net.Conn, string, bool) {
	remote := c.RemoteAddr()
	if !ln.trustsProxy(remote) {
		s.refuseProxy(ln, remote.String(), "connection from an address not in proxy_protocol.trusted_cidrs")
		c.Close()
		return nil, "", false
	}
	_ = c.SetReadDeadline(time.Now().Add(s.opts.PartialFrameTimeout))
	// A header is sent at once and is short (v1 at most 107 bytes, v2
	// with TCP addresses 28 and 52): the buffer starts small and grows
	// only for a v2 header's long TLVs, so that a storm of connections
	// does not cost 64 KiB each.
	buf := make([]byte, 0, proxyReadStart)
	for {
		src, n, perr := parseProxyHeader(buf)
		if perr == nil {
			_ = c.SetReadDeadline(time.Time{})
			return &prefixedConn{Conn: c, rest: buf[n:]}, proxyPeer(src, remote), true
		}
		if !errors.Is(perr, errProxyIncomplete) {
			s.refuseProxy(ln, remote.String(), perr.Error())
			c.Close()
			return nil, "", false
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(2*cap(buf), proxyMaxHeader)-len(buf))
		}
		k, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil && k == 0 {
			// Nothing at all, then the end: a balancer's TCP health
			// check, not a refusal.
			if len(buf) > 0 || !errors.Is(err, io.EOF) {
				s.refuseProxy(ln, remote.String(), fmt.Sprintf("no complete PROXY protocol header after %d bytes: %v", len(buf), err))
			}
			c.Close()
			return nil, "", false
		}
	}
}

// proxyReadStart is the first read's buffer for a header on a TLS
// listener: room for any v1 header and a v2 one with a few TLVs.
const proxyReadStart = 256

// prefixedConn reads what was read past the PROXY header before reading
// the connection itself. Read is called by one goroutine at a time, as
// crypto/tls does.
type prefixedConn struct {
	net.Conn
	rest []byte
}

func (p *prefixedConn) Read(b []byte) (int, error) {
	if len(p.rest) > 0 {
		n := copy(b, p.rest)
		p.rest = p.rest[n:]
		if len(p.rest) == 0 {
			p.rest = nil
		}
		return n, nil
	}
	return p.Conn.Read(b)
}
