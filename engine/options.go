package engine

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Security protocols a listener can speak, as Kafka names them.
const (
	Plaintext     = "PLAINTEXT"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// ListenerOptions configures one listener.
type ListenerOptions struct {
	// Name identifies the listener in logs and in Server.Addr. Default: the
	// protocol.
	Name string
	// Protocol is PLAINTEXT, SASL_PLAINTEXT or SASL_SSL. PLAINTEXT and
	// SASL_PLAINTEXT run on gnet event loops; SASL_SSL on crypto/tls.
	Protocol string
	// Bind is the host:port to listen on; port 0 picks a free one.
	Bind string
	// Advertised is the host:port Metadata responses send clients to.
	// Default: Bind, with the port actually bound. Set it when clients reach
	// the relay through another address (NAT, a Service, a DNS name).
	Advertised string
	// TLS serves SASL_SSL. Required for SASL_SSL, ignored otherwise.
	TLS *tls.Config
	// Principal is who clients of a PLAINTEXT listener write as, since
	// they do not authenticate. Nil on a PLAINTEXT listener means every
	// topic answers TOPIC_AUTHORIZATION_FAILED.
	Principal *Principal
}

func (l *ListenerOptions) sasl() bool { return l.Protocol != Plaintext }

// Options configures a Server. Zero fields take the documented defaults.
type Options struct {
	Listeners []ListenerOptions
	// NodeID identifies this relay node: it is in the high bits of the
	// producer IDs it hands out (see producerIDBase), so nodes of one
	// fleet must have distinct NodeIDs, from 0 to MaxNodeID. It is also
	// the broker id in Metadata unless BrokerID is set. Default 1.
	NodeID int32
	// BrokerID is the broker id Metadata names as the one broker, leader
	// of every partition. Default: NodeID. Nodes behind one shared
	// address (a load balancer or a DNS name with every node's address)
	// all advertise that address and must all name the same BrokerID, so
	// every node answers as "the" broker (see 03_metadata.go).
	BrokerID int32
	// DrainLinger is how long Drain keeps listening after Ready turned
	// false, so a load balancer's health check or Kubernetes' readiness
	// probe takes the node out before new connections would be refused.
	// Default 5 s.
	DrainLinger time.Duration
	// MaxRequestBytes bounds one request frame; a larger frame closes the
	// connection. Default 100 MiB (Kafka's socket.request.max.bytes).
	MaxRequestBytes int
	// MaxSASLRequestBytes bounds frames before authentication, so an
	// unauthenticated peer cannot make the relay buffer much. Default
	// 512 KiB (Kafka's sasl.server.max.receive.size).
	MaxSASLRequestBytes int
	// MaxMessageBytes bounds one partition's batch in a Produce request;
	// larger ones get MESSAGE_TOO_LARGE. Default 1,000,000 (Kafka's
	// max.message.bytes and the shippers' max_message_bytes).
	MaxMessageBytes int
	// MaxInFlightPerConn is how many requests of one connection may be
	// read and not yet answered; past it the connection is not read.
	// Clients pipeline up to 5. Default 16.
	MaxInFlightPerConn int
	// MaxBufferedBytes is the global budget of request bytes read and not
	// yet stored or answered; past it no connection is read until it
	// drains. Default 256 MiB.
	MaxBufferedBytes int64
	// IdleTimeout closes a connection that sent nothing and awaits
	// nothing for that long (Kafka's connections.max.idle.ms). Default
	// 10 min.
	IdleTimeout time.Duration
	// PartialFrameTimeout closes a connection that started a request and
	// did not finish sending it in that time (a slow-loris). Default 30 s.
	PartialFrameTimeout time.Duration
	// Throttle, if set, decides throttle_time_ms for Produce and mutes
	// connections for that long (see BacklogThrottle).
	Throttle Throttler
	// EventLoops is the number of gnet event loops per plaintext
	// listener. Default: GOMAXPROCS.
	EventLoops int
	// Logger receives connection-level events. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.NodeID == 0 {
		o.NodeID = 1
	}
	if o.BrokerID == 0 {
		o.BrokerID = o.NodeID
	}
	if o.DrainLinger == 0 {
		o.DrainLinger = 5 * time.Second
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
		case SASLSSL:
			if l.TLS == nil {
				return fmt.Errorf("%s: SASL_SSL needs a TLS certificate and key", where)
			}
		default:
			return fmt.Errorf("%s: protocol %q is not one of PLAINTEXT, SASL_PLAINTEXT, SASL_SSL", where, l.Protocol)
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
