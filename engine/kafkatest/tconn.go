package kafkatest

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TConn is a Conn for a test's own goroutine: every failure stops the test
// with Fatal. It is closed when the test ends.
type TConn struct {
	t testing.TB
	c *Conn
}

// DialT dials addr (over TLS when tlsCfg is set) for t.
func DialT(t testing.TB, addr string, tlsCfg *tls.Config) *TConn {
	t.Helper()
	c, err := Dial(addr, tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &TConn{t: t, c: c}
}

// Conn is the connection underneath, for what returns errors.
func (c *TConn) Conn() *Conn { return c.c }

// Send writes req and returns its correlation id.
func (c *TConn) Send(req kmsg.Request) int32 {
	c.t.Helper()
	corr, err := c.c.Send(req)
	if err != nil {
		c.t.Fatalf("write %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return corr
}

// Write writes raw bytes: frames no well-behaved client would send.
func (c *TConn) Write(b []byte) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// ReadFrame reads one size-prefixed frame (10 s at most).
func (c *TConn) ReadFrame() ([]byte, error) { return c.c.ReadFrame(10 * time.Second) }

// Read reads the response to req sent as corr.
func (c *TConn) Read(corr int32, req kmsg.Request) kmsg.Response {
	c.t.Helper()
	resp, err := c.c.Recv(corr, req, 10*time.Second)
	if err != nil {
		c.t.Fatalf("read response to %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// RoundTrip sends req and reads its response.
func (c *TConn) RoundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	return c.Read(c.Send(req), req)
}

// ExpectClosed fails unless the peer closes the connection within 10 s.
func (c *TConn) ExpectClosed() {
	c.t.Helper()
	if _, err := c.c.WaitClosed(10 * time.Second); err != nil {
		c.t.Fatalf("%v, want it closed", err)
	}
}

// ExpectClosedSilent fails the test unless the relay closes the
// connection without sending anything more.
func (c *TConn) ExpectClosedSilent() {
	c.t.Helper()
	n, err := c.c.BytesUntilClosed(10 * time.Second)
	if err != nil {
		c.t.Fatalf("%v, want it closed", err)
	}
	if n > 0 {
		c.t.Errorf("%d bytes sent before the close, want none", n)
	}
}

// SASLPlain authenticates with SaslHandshake v1 + SaslAuthenticate and
// returns the answer to the latter.
func (c *TConn) SASLPlain(user, password string) *kmsg.SASLAuthenticateResponse {
	c.t.Helper()
	resp, err := c.c.SASLPlain(user, password)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}
