package engine

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// An idle TLS connection's cost is mostly its reading goroutine's stack.
// The garbage collector halves a parked goroutine's stack while it uses
// less than a quarter of it (counting 800 bytes of slack); parked inside
// crypto/tls's Read (record layer, bytes.Buffer, netFD) under the read
// loop that is 8 KiB per connection. So a connection that stays silent
// past Options.TLSIdleAfter parks on the socket itself under small frames
// instead (its stack shrinks to 4 KiB) and without crypto/tls's read
// buffers (tls_buffers.go), and reads through crypto/tls again once bytes
// arrived. A busy connection never gets that far: its next request comes
// within TLSIdleAfter, read as before.

// awaitRequest waits until the next request's first bytes may have come:
// one read from crypto/tls (then in hdr[0]), or the socket has some. A
// connection silent for IdleTimeout is closed only if it awaits no
// answer: a request slower than that must not cost its connection. It
// reports whether to go on.
func (r *tlsReader) awaitRequest() bool {
	if r.raw == nil {
		return true // readRequest waits inside crypto/tls
	}
	for {
		// IdleTimeout counts from here, whether it passes in crypto/tls
		// or on the socket.
		start, idle := time.Now(), r.s.opts.IdleTimeout
		_ = r.c.SetReadDeadline(start.Add(min(r.s.opts.TLSIdleAfter, idle)))
		n, err := r.c.Read(r.hdr[:1])
		if n == 1 {
			r.have = true
			return true
		}
		// A timeout leaves crypto/tls usable (a temporary error), with
		// nothing decrypted left over: Read returns what it holds.
		if isTimeout(err) {
			releaseTLSBuffers(r.c)
			_ = r.c.SetReadDeadline(start.Add(idle))
			if err = waitReadable(r.raw); err == nil {
				return true
			}
		}
		if isTimeout(err) && !r.sess.idle() {
			continue
		}
		r.s.logReadEnd(r.ln, r.sess.peer, err, "idle_timeout")
		return false
	}
}

// readIdle reads the first byte of the next request from c, waiting at
// most idle for it while nothing awaits an answer. It reports whether to
// go on.
func readIdle(c *tls.Conn, b []byte, idle time.Duration, sess *session) bool {
	for {
		_ = c.SetReadDeadline(time.Now().Add(idle))
		_, err := io.ReadFull(c, b)
		if err == nil {
			return true
		}
		if isTimeout(err) && !sess.idle() {
			continue
		}
		sess.srv.logReadEnd(sess.ln, sess.peer, err, "idle_timeout")
		return false
	}
}

// rawConnOf is c's socket, or nil when c is not directly over one (a
// wrapped connection may hold bytes of its own that the socket no longer
// shows).
func rawConnOf(c *tls.Conn) syscall.RawConn {
	nc := c.NetConn()
	if p, ok := nc.(*prefixedConn); ok && len(p.rest) == 0 {
		// Behind a PROXY header: once crypto/tls has read what came with
		// the header (the handshake has), the socket is all there is.
		nc = p.Conn
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// waitReadable waits until raw has bytes to read, or end of file, or an
// error (read deadlines apply); it consumes nothing.
func waitReadable(raw syscall.RawConn) error {
	var peek [1]byte
	var serr error
	err := raw.Read(func(fd uintptr) bool {
		_, _, e := unix.Recvfrom(int(fd), peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false // wait for the poller
		}
		serr = e // nil: bytes or end of file, which the next Read sees
		return true
	})
	if err != nil {
		return err
	}
	return serr
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
