package kafkatest

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClientID is the client id of every request this package frames.
const ClientID = "test"

// maxResponse bounds a response frame, so a garbled size is an error
// rather than an allocation of gigabytes.
const maxResponse = 64 << 20

var formatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID(ClientID))

// EncodeRequest frames req with its size prefix and a request header v1
// (v2 for flexible versions) carrying corr and ClientID.
func EncodeRequest(corr int32, req kmsg.Request) []byte {
	return formatter.AppendRequest(nil, req, corr)
}

// Conn is one Kafka connection spoken by hand: nothing reconnects behind
// the test's back, and requests may be pipelined or written as raw bytes
// (Conn embeds the net.Conn). A Conn is used by one goroutine at a time.
type Conn struct {
	net.Conn
	rd   *bufio.Reader
	corr int32 // the last correlation id Send used
}

// Dial connects to addr, over TLS (handshake included) when tlsCfg is set.
func Dial(addr string, tlsCfg *tls.Config) (*Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	if tlsCfg != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tlsCfg)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return NewConn(c), nil
}

// DialFrom connects to addr in plaintext from a given loopback source
// address (127.0.0.x), so that many connections do not exhaust one
// address's ephemeral ports.
func DialFrom(src net.IP, addr string) (*Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return NewConn(c), nil
}

// NewConn speaks Kafka over c.
func NewConn(c net.Conn) *Conn { return &Conn{Conn: c, rd: bufio.NewReaderSize(c, 4<<10)} }

// LastCorr is the correlation id of the last request Send wrote; a request
// written by hand continues from LastCorr()+1.
func (c *Conn) LastCorr() int32 { return c.corr }

// Send writes req and returns its correlation id.
func (c *Conn) Send(req kmsg.Request) (int32, error) {
	ids, err := c.SendAll(req)
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// SendAll writes reqs in a single write (pipelined) and returns their
// correlation ids.
func (c *Conn) SendAll(reqs ...kmsg.Request) ([]int32, error) {
	var buf []byte
	ids := make([]int32, len(reqs))
	for i, r := range reqs {
		c.corr++
		ids[i] = c.corr
		// AppendRequest writes the size at dst[0:4]: frame each
		// request on its own, then join them.
		buf = append(buf, formatter.AppendRequest(nil, r, c.corr)...)
	}
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Write(buf)
	return ids, err
}

// ReadFrame reads one size-prefixed frame within timeout.
func (c *Conn) ReadFrame(timeout time.Duration) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var size [4]byte
	if _, err := io.ReadFull(c.rd, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxResponse {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c.rd, b)
	return b, err
}

// Recv reads the next response within timeout; it must answer req, sent
// as corr.
func (c *Conn) Recv(corr int32, req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	b, err := c.ReadFrame(timeout)
	if err != nil {
		return nil, err
	}
	return ParseResponse(b, corr, req)
}

// ParseResponse parses frame (without its size) as the response to req
// sent as corr.
func ParseResponse(frame []byte, corr int32, req kmsg.Request) (kmsg.Response, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("response frame of %d bytes", len(frame))
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		return nil, fmt.Errorf("response correlation id %d, want %d", got, corr)
	}
	b := frame[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() { // ApiVersions keeps header v0
		if len(b) == 0 || b[0] != 0 {
			return nil, errors.New("unexpected tagged fields in the response header")
		}
		b = b[1:]
	}
	if err := resp.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("parse %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// RoundTrip sends req and reads its response within timeout.
func (c *Conn) RoundTrip(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	corr, err := c.Send(req)
	if err != nil {
		return nil, err
	}
	return c.Recv(corr, req, timeout)
}

// SASLPlain authenticates with SaslHandshake v1 and SaslAuthenticate v1.
// A handshake the relay refuses is an error; the authentication's answer
// is returned for the caller to judge (ErrorCode 0: authenticated).
func (c *Conn) SASLPlain(user, password string) (*kmsg.SASLAuthenticateResponse, error) {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	resp, err := c.RoundTrip(hs, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("SaslHandshake: %w", err)
	}
	if code := resp.(*kmsg.SASLHandshakeResponse).ErrorCode; code != 0 {
		return nil, fmt.Errorf("SaslHandshake: error %d", code)
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version = 1
	auth.SASLAuthBytes = []byte("\x00" + user + "\x00" + password)
	resp, err = c.RoundTrip(auth, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("SaslAuthenticate: %w", err)
	}
	return resp.(*kmsg.SASLAuthenticateResponse), nil
}

// WaitClosed waits up to timeout for the peer to close the connection,
// discarding whatever it sends; it returns how long that took, or an error
// if the connection is still open.
func (c *Conn) WaitClosed(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	_, err := c.BytesUntilClosed(timeout)
	return time.Since(start), err
}

// BytesUntilClosed reads until the relay closes the connection and says
// how many bytes it sent meanwhile (a Produce with acks=0 must get none).
func (c *Conn) BytesUntilClosed(timeout time.Duration) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	b := make([]byte, 64<<10)
	total := 0
	for {
		n, err := c.rd.Read(b)
		total += n
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return total, fmt.Errorf("connection still open after %v", timeout)
		}
		return total, nil
	}
}

// Authenticate is SASLPlain returning the answer's Kafka error (nil:
// authenticated).
func (c *Conn) Authenticate(user, password string) error {
	resp, err := c.SASLPlain(user, password)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}
