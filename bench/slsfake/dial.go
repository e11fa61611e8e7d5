package slsfake

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"
)

// NewHTTPClient returns an *http.Client for the SDK that sends every
// connection for endpointHost or any *.endpointHost (whatever port the URL
// names) to addr, the stand-in's real listen address, and dials anything
// else normally. This is how the SDK, which always builds
// http://<project>.<endpoint>/ URLs, reaches a stand-in on 127.0.0.1:port.
// Use it for a stand-in in another process (cmd/slsfake); in-process,
// Server.HTTPClient does the same.
//
// The transport keeps many idle connections per host, since the SDK's
// producer runs dozens of concurrent senders against one host name and the
// default of 2 would make most of them reconnect on every request.
func NewHTTPClient(addr, endpointHost string) *http.Client {
	if h, _, err := net.SplitHostPort(endpointHost); err == nil {
		endpointHost = h
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // a proxy from the environment would not know the name
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.DialContext = func(ctx context.Context, network, hostport string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(hostport)
		if err == nil && (host == endpointHost || strings.HasSuffix(host, "."+endpointHost)) {
			hostport = addr
		}
		return d.DialContext(ctx, network, hostport)
	}
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

// HTTPClient returns an *http.Client that reaches this stand-in under the
// name Endpoint() reports. Each call returns a new client (with its own
// connection pool).
func (s *Server) HTTPClient() *http.Client {
	return NewHTTPClient(s.Addr(), s.cfg.EndpointHost)
}
