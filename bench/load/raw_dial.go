package load

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// dialRaw opens one raw fleet connection: PLAINTEXT, or with cfg.TLS a
// TLS handshake and, with cfg.User, SASL PLAIN (SaslHandshake v1 and
// SaslAuthenticate v1), as a SASL_SSL shipper does before its first
// Produce.
func dialRaw(cfg Config) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", cfg.Addr, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	if cfg.TLS != nil {
		tc := tls.Client(c, cfg.TLS)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("TLS handshake: %w", err)
		}
		_ = tc.SetDeadline(time.Time{})
		c = tc
	}
	r := bufio.NewReaderSize(c, 4096)
	if cfg.User != "" {
		if err := saslPlain(c, r, cfg.User, cfg.Password); err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	return c, r, nil
}

// saslPlain authenticates c with SASL PLAIN.
func saslPlain(c net.Conn, r *bufio.Reader, user, password string) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	if err := rawRoundTrip(c, r, 1, hs, hsResp); err != nil {
		return fmt.Errorf("SaslHandshake: %w", err)
	}
	if hsResp.ErrorCode != 0 {
		return fmt.Errorf("SaslHandshake: error code %d", hsResp.ErrorCode)
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version = 1
	auth.SASLAuthBytes = []byte("\x00" + user + "\x00" + password)
	authResp := kmsg.NewPtrSASLAuthenticateResponse()
	if err := rawRoundTrip(c, r, 2, auth, authResp); err != nil {
		return fmt.Errorf("SaslAuthenticate: %w", err)
	}
	if authResp.ErrorCode != 0 {
		return fmt.Errorf("SaslAuthenticate: error code %d", authResp.ErrorCode)
	}
	return nil
}

// rawRoundTrip writes req as corr and reads its answer into resp (header
// v0: neither request is flexible at the versions used).
func rawRoundTrip(c net.Conn, r *bufio.Reader, corr int32, req kmsg.Request, resp kmsg.Response) error {
	if _, err := c.Write(rawFormatter.AppendRequest(nil, req, corr)); err != nil {
		return err
	}
	body, err := readFrame(r)
	if err != nil {
		return err
	}
	if len(body) < 4 {
		return fmt.Errorf("answer of %d bytes", len(body))
	}
	resp.SetVersion(req.GetVersion())
	return resp.ReadFrom(body[4:])
}
