package engine

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Security protocols a listener can speak, as Kafka names them.
const (
	Plaintext     = "PLAINTEXT"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
	// SSL is TLS without SASL: clients log in by their certificate, which
	// must map to a relay user (ListenerOptions.TLS with client CAs, and
	// Options.Users).
	SSL = "SSL"
)

// What SASL PLAIN checks on a listener (ListenerOptions.Plain).
const (
	// PlainAccessKeys: username = Project, password =
	// AccessKeyId#AccessKeySecret, as SLS's own endpoint (the default).
	PlainAccessKeys = "accesskeys"
	// PlainRelayUsers: username and password of a relay user. Only on
	// SASL_SSL, where the password does not cross the network in the clear.
	PlainRelayUsers = "users"
	// PlainEither: a relay user's name is checked as PlainRelayUsers,
	// any other username as PlainAccessKeys. SASL_SSL only.
	PlainEither = "either"
)

// ListenerOptions configures one listener.
//
// The yaml names are the keys of a `listeners` entry of slsrelay's
// configuration file; TLS and Principal are built by the relay's assembly
// from the entry's tls section and PLAINTEXT keys.
type ListenerOptions struct {
	// Name identifies the listener in logs and in Server.Addr. Default: the
	// protocol.
	Name string `yaml:"name"`
	// Protocol is PLAINTEXT, SASL_PLAINTEXT or SASL_SSL. PLAINTEXT and
	// SASL_PLAINTEXT run on gnet event loops; SASL_SSL on crypto/tls.
	Protocol string `yaml:"protocol"`
	// Bind is the host:port to listen on; port 0 picks a free one.
	Bind string `yaml:"bind"`
	// Advertised is the host:port Metadata responses send clients to.
	// Default: Bind, with the port actually bound. Set it when clients reach
	// the relay through another address (NAT, a Service, a DNS name).
	Advertised string `yaml:"advertised"`
	// TLS serves SASL_SSL. Required for SASL_SSL, ignored otherwise.
	TLS *tls.Config `yaml:"-"`
	// Principal is who clients of a PLAINTEXT listener write as, since
	// they do not authenticate. Nil on a PLAINTEXT listener means every
	// topic answers TOPIC_AUTHORIZATION_FAILED.
	Principal *Principal `yaml:"-"`
	// Mechanisms are the SASL mechanisms the listener offers, of PLAIN,
	// SCRAM-SHA-256 and SCRAM-SHA-512 (SCRAM needs Options.Users). Nil:
	// PLAIN only.
	Mechanisms []string `yaml:"mechanisms"`
	// Plain is what PLAIN checks: PlainAccessKeys (""), PlainRelayUsers
	// or PlainEither.
	Plain string `yaml:"plain"`
	// ProxyProtocol takes the client's address from a PROXY protocol
	// header, for a listener behind a TCP load balancer.
	ProxyProtocol ProxyProtocolOptions `yaml:"proxy_protocol"`
}

// ProxyProtocolOptions: the listener sits behind TCP load balancers that
// send a PROXY protocol header (v1 or v2; HAProxy's send-proxy and
// send-proxy-v2) before the client's bytes, TLS included. The header's
// source address is then the client's address everywhere: __source__,
// refusals, the shipper view.
type ProxyProtocolOptions struct {
	// Enabled: every connection must come from TrustedCIDRs and start
	// with a valid header; any other is refused (reason proxy_protocol).
	Enabled bool `yaml:"enabled"`
	// TrustedCIDRs are the balancers' addresses ("10.0.0.0/8",
	// "192.0.2.7/32"): only they may say who a client is. Required when
	// Enabled. An IPv4-mapped prefix (::ffff:10.0.0.0/104) means its IPv4
	// prefix (10.0.0.0/8).
	TrustedCIDRs []string `yaml:"trusted_cidrs"`
}

// trusted parses TrustedCIDRs; nil when the PROXY protocol is off.
func (p *ProxyProtocolOptions) trusted() ([]netip.Prefix, error) {
	if !p.Enabled {
		return nil, nil
	}
	if len(p.TrustedCIDRs) == 0 {
		return nil, errors.New("proxy_protocol: enabled needs trusted_cidrs, the load balancers' addresses")
	}
	out := make([]netip.Prefix, 0, len(p.TrustedCIDRs))
	for _, c := range p.TrustedCIDRs {
		pfx, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("proxy_protocol: trusted_cidrs: %w (one address is a /32 or /128)", err)
		}
		out = append(out, unmapPrefix(pfx.Masked()))
	}
	return out, nil
}

// unmapPrefix returns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) as
// its IPv4 prefix (10.0.0.0/8): connecting addresses are compared in IPv4
// form (trustsProxy unmaps them), so the mapped form would match nothing.
// A shorter IPv6 prefix (::/0) stays IPv6 and matches no IPv4 client.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() || p.Bits() < 96 {
		return p
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
}

func (l *ListenerOptions) sasl() bool { return l.Protocol == SASLPlaintext || l.Protocol == SASLSSL }

// mechanisms returns the SASL mechanisms offered, PLAIN by default.
func (l *ListenerOptions) mechanisms() []string {
	if len(l.Mechanisms) == 0 {
		return []string{PLAIN}
	}
	return l.Mechanisms
}

// validateAuth checks the listener's login settings against users (the
// relay users, nil without).
func (l *ListenerOptions) validateAuth(users UserDirectory) error {
	for _, m := range l.Mechanisms {
		switch m {
		case PLAIN:
		case SCRAMSHA256, SCRAMSHA512:
			if users == nil {
				return fmt.Errorf("mechanism %s needs relay users (Options.Users)", m)
			}
		default:
			return fmt.Errorf("mechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", m)
		}
	}
	switch l.Plain {
	case "", PlainAccessKeys:
	case PlainRelayUsers, PlainEither:
		if l.Protocol != SASLSSL {
			return fmt.Errorf("plain %q (relay-user passwords) needs SASL_SSL: PLAIN sends the password as it is", l.Plain)
		}
		if users == nil {
			return fmt.Errorf("plain %q needs relay users (Options.Users)", l.Plain)
		}
	default:
		return fmt.Errorf("plain %q is not one of %s, %s, %s", l.Plain, PlainAccessKeys, PlainRelayUsers, PlainEither)
	}
	if l.Protocol == SSL && users == nil {
		return fmt.Errorf("SSL logs clients in by certificate and needs relay users (Options.Users)")
	}
	if l.Protocol == SSL && (l.TLS == nil || l.TLS.ClientAuth != tls.RequireAndVerifyClientCert) {
		return fmt.Errorf("SSL needs a TLS certificate and a client CA")
	}
	return nil
}

// DefaultDrainLinger is Options.DrainLinger's default.
const DefaultDrainLinger = 5 * time.Second

// Options configures a Server. Zero fields take the documented defaults.
//
// The yaml names are the keys of the `limits` section of slsrelay's
// configuration file (package cmd/slsrelay/relay embeds Options there);
// fields tagged "-" are set by the relay's assembly, not by the file.
type Options struct {
	Listeners []ListenerOptions `yaml:"-"`
	// NodeID identifies this relay node: it is in the high bits of the
	// producer IDs it hands out (see producerIDBase), so nodes of one
	// fleet must have distinct NodeIDs, from 0 to MaxNodeID. It is also
	// the broker id in Metadata unless BrokerID is set. Default 1.
	NodeID int32 `yaml:"-"`
	// BrokerID is the broker id Metadata names as the one broker, leader
	// of every partition. Default: NodeID. Nodes behind one shared
	// address (a load balancer or a DNS name with every node's address)
	// all advertise that address and must all name the same BrokerID, so
	// every node answers as "the" broker (see 03_metadata.go).
	BrokerID int32 `yaml:"-"`
	// DrainLinger is how long Drain keeps listening after Ready turned
	// false, so a load balancer's health check or Kubernetes' readiness
	// probe takes the node out before new connections would be refused.
	// Default 5 s.
	DrainLinger time.Duration `yaml:"drain_linger"`
	// MaxRequestBytes bounds one request frame; a larger frame closes the
	// connection. Default 100 MiB (Kafka's socket.request.max.bytes).
	MaxRequestBytes int `yaml:"max_request_bytes"`
	// MaxSASLRequestBytes bounds frames before authentication, so an
	// unauthenticated peer cannot make the relay buffer much. Default
	// 512 KiB (Kafka's sasl.server.max.receive.size).
	MaxSASLRequestBytes int `yaml:"max_sasl_request_bytes"`
	// MaxMessageBytes bounds one partition's batch in a Produce request;
	// larger ones get MESSAGE_TOO_LARGE. Default 1,000,000 (Kafka's
	// max.message.bytes and the shippers' max_message_bytes).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxInFlightPerConn is how many requests of one connection may be
	// read and not yet answered; past it the connection is not read.
	// Clients pipeline up to 5. Default 16.
	MaxInFlightPerConn int `yaml:"max_in_flight_per_conn"`
	// MaxBufferedBytes is the global budget of request bytes read and not
	// yet stored or answered; past it no connection is read until it
	// drains. Default 256 MiB.
	MaxBufferedBytes int64 `yaml:"max_buffered_bytes"`
	// IdleTimeout closes a connection that sent nothing and awaits
	// nothing for that long (Kafka's connections.max.idle.ms). Default
	// 10 min.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// PartialFrameTimeout closes a connection that started a request and
	// did not finish sending it in that time (a slow-loris), and on a
	// proxy_protocol listener one whose header has not come whole in that
	// time. Default 30 s.
	PartialFrameTimeout time.Duration `yaml:"partial_frame_timeout"`
	// TLSIdleAfter is how long a TLS connection may send nothing before
	// it gives back crypto/tls's read buffers, its writing goroutine and
	// most of its reading goroutine's stack (see tls_idle.go); one that
	// sends more often (a shipper flushing every second) keeps them, as
	// waking an idle connection costs a few allocations. Default 3 s.
	TLSIdleAfter time.Duration `yaml:"-"`
	// Throttle, if set, decides throttle_time_ms for Produce and mutes
	// connections for that long (see BacklogThrottle).
	Throttle Throttler `yaml:"-"`
	// EventLoops is the number of gnet event loops per plaintext
	// listener. Default: GOMAXPROCS.
	EventLoops int `yaml:"-"`
	// Logger receives connection-level events. Default slog.Default().
	Logger *slog.Logger `yaml:"-"`
	// Users are the relay users (engine/users.Directory), for SCRAM,
	// PLAIN against user passwords and SSL certificate logins. Nil: only
	// AccessKey logins.
	Users UserDirectory `yaml:"-"`
}

func (o *Options) setDefaults() {
	if o.NodeID == 0 {
		o.NodeID = 1
	}
	if o.BrokerID == 0 {
		o.BrokerID = o.NodeID
	}
	if o.DrainLinger == 0 {
		o.DrainLinger = DefaultDrainLinger
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = 100 << 20
	}
	if o.MaxSASLRequestBytes == 0 {
		o.MaxSASLRequestBytes = 512 << 10
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = 1_000_000
	}
	if o.MaxInFlightPerConn == 0 {
		o.MaxInFlightPerConn = 16
	}
	if o.MaxBufferedBytes == 0 {
		o.MaxBufferedBytes = 256 << 20
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.PartialFrameTimeout == 0 {
		o.PartialFrameTimeout = 30 * time.Second
	}
	if o.TLSIdleAfter == 0 {
		o.TLSIdleAfter = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	for i := range o.Listeners {
		if o.Listeners[i].Name == "" {
			o.Listeners[i].Name = o.Listeners[i].Protocol
		}
	}
}

func (o *Options) validate() error {
	if len(o.Listeners) == 0 {
		return fmt.Errorf("no listeners configured")
	}
	names := map[string]bool{}
	for i, l := range o.Listeners {
		where := fmt.Sprintf("listeners[%d] (%s)", i, l.Name)
		switch l.Protocol {
		case Plaintext, SASLPlaintext:
		case SASLSSL, SSL:
			if l.TLS == nil {
				return fmt.Errorf("%s: %s needs a TLS certificate and key", where, l.Protocol)
			}
		default:
			return fmt.Errorf("%s: protocol %q is not one of PLAINTEXT, SASL_PLAINTEXT, SASL_SSL, SSL", where, l.Protocol)
		}
		if err := l.validateAuth(o.Users); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if names[l.Name] {
			return fmt.Errorf("%s: listener name %q used twice", where, l.Name)
		}
		names[l.Name] = true
		if _, err := splitHostPort(l.Bind); err != nil {
			return fmt.Errorf("%s: bind: %w", where, err)
		}
		if l.Advertised != "" {
			if _, err := splitHostPort(l.Advertised); err != nil {
				return fmt.Errorf("%s: advertised: %w", where, err)
			}
		}
		if _, err := l.ProxyProtocol.trusted(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if o.NodeID < 0 || o.NodeID > MaxNodeID {
		return fmt.Errorf("node id %d is outside 0 to %d (it is part of every producer ID the node hands out)", o.NodeID, MaxNodeID)
	}
	if o.BrokerID < 0 {
		return fmt.Errorf("broker id %d must not be negative", o.BrokerID)
	}
	if o.DrainLinger < 0 {
		return fmt.Errorf("drain linger %v must not be negative", o.DrainLinger)
	}
	if o.MaxRequestBytes < 0 || o.MaxSASLRequestBytes < 0 || o.MaxMessageBytes < 0 || o.MaxInFlightPerConn < 0 {
		return fmt.Errorf("limits must not be negative")
	}
	return nil
}

type hostPort struct {
	host string
	port int32
}

func splitHostPort(addr string) (hostPort, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return hostPort{}, fmt.Errorf("cannot parse %q as host:port: %w", addr, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return hostPort{}, fmt.Errorf("cannot parse port of %q: %w", addr, err)
	}
	return hostPort{host: strings.Trim(h, "[]"), port: int32(port)}, nil
}
