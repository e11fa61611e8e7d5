package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the Kafka-protocol front end: its listeners and their
// connections. Start and Close must not be called concurrently with each
// other; Addr is safe for concurrent use once Start returned.
type Server struct {
	opts     Options
	catalog  Catalog
	appender Appender
	log      *slog.Logger

	listeners []*listener
	budget    *budget
	reaper    *reaper
	sessions  sync.Map // *session -> struct{}: every open connection
	// ending holds the sessions of closed connections whose frames are
	// still handled or awaited (an acks=0 producer that hung up at once).
	ending sync.Map // *session -> struct{}
	// leaving: a Drain began; every connection's next Produce or
	// Metadata answer is its last, and Produce gets NOT_LEADER_OR_FOLLOWER.
	leaving atomic.Bool
	// draining: no more requests are read (Shutdown).
	draining       atomic.Bool
	topicIDs       topicIDs
	topicIDLearner topicIDLearner
	dedup          dedup
	nextProducerID atomic.Int64
	refusals       *refusalLog
	// down receives the name of a listener that stopped accepting on
	// its own (listener_down.go); one slot per listener.
	down chan string

	closeOnce sync.Once
}

// listener is one configured listener and, once started, its transport.
type listener struct {
	opts ListenerOptions
	// proxyTrusted: where PROXY protocol headers may come from; nil when
	// the listener takes none (see proxy_listener.go).
	proxyTrusted []netip.Prefix
	metrics      listenerMetrics
	addr         string   // bound address
	advertised   hostPort // what Metadata reports
	stop         func(context.Context) error
	// down: the transport stopped by itself (gnet ends its engine on an
	// accept error such as EMFILE); the listener serves no one until the
	// process restarts, so the server is not ready.
	down atomic.Bool
}

// bound records the address ln listens on and what Metadata advertises.
// Transports call it before accepting the first connection.
func (ln *listener) bound(addr string) error {
	ln.addr = addr
	adv := ln.opts.Advertised
	if adv == "" {
		adv = addr
	}
	var err error
	ln.advertised, err = splitHostPort(adv)
	return err
}

// New checks opts and returns a Server that is not listening yet.
func New(opts Options, catalog Catalog, appender Appender) (*Server, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("invalid engine options: %w", err)
	}
	if catalog == nil || appender == nil {
		return nil, errors.New("engine needs a catalog and an appender")
	}
	s := &Server{opts: opts, catalog: catalog, appender: appender, log: opts.Logger, budget: newBudget(opts.MaxBufferedBytes), refusals: newRefusalLog()}
	s.reaper = newReaper(s)
	s.down = make(chan string, len(opts.Listeners))
	// Producer IDs carry the node and start from the clock: unique
	// across the fleet and across restarts (see producer_id.go).
	s.nextProducerID.Store(producerIDBase(opts.NodeID, time.Now()))
	for _, lo := range opts.Listeners {
		trusted, _ := lo.ProxyProtocol.trusted() // validate checked it
		s.listeners = append(s.listeners, &listener{opts: lo, proxyTrusted: trusted, metrics: newListenerMetrics(lo.Name)})
	}
	return s, nil
}

// Start binds every listener. On error, listeners already bound are closed.
func (s *Server) Start() error {
	go s.reaper.run()
	for _, ln := range s.listeners {
		var err error
		if ln.opts.Protocol == SASLSSL || ln.opts.Protocol == SSL {
			err = s.startTLS(ln)
		} else {
			err = s.startGnet(ln)
		}
		if err != nil {
			s.Close()
			return fmt.Errorf("cannot start listener %s on %s: %w", ln.opts.Name, ln.opts.Bind, err)
		}
		s.log.Info("listening", "listener", ln.opts.Name, "protocol", ln.opts.Protocol, "addr", ln.addr,
			"advertised", fmt.Sprintf("%s:%d", ln.advertised.host, ln.advertised.port))
	}
	return nil
}

// Addr returns the address listener name is bound to ("" if unknown).
func (s *Server) Addr(name string) string {
	for _, ln := range s.listeners {
		if ln.opts.Name == name {
			return ln.addr
		}
	}
	return ""
}

// Shutdown stops reading requests, waits until every request already read
// is answered (its appends done) or ctx ends, then closes like Close: a
// graceful stop, nothing acknowledged is lost, nothing read is left
// unanswered. A node behind a shared address stops with Drain, which sends
// its producers elsewhere first and ends with Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.drained() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			s.log.Warn("shutdown: requests still in flight when the grace period ended")
			return errors.Join(ctx.Err(), s.Close())
		}
	}
	return s.Close()
}

func (s *Server) drained() bool {
	done := true
	check := func(k, _ any) bool {
		sess := k.(*session)
		sess.mu.Lock()
		busy := sess.busyLocked() && !sess.failed
		sess.mu.Unlock()
		done = !busy
		return done
	}
	s.sessions.Range(check)
	if done {
		s.ending.Range(check)
	}
	return done
}

// Ready reports whether every listener is up and the server is neither
// draining nor stopping: false from the moment Drain or Shutdown begins.
func (s *Server) Ready() bool {
	if s.leaving.Load() || s.draining.Load() {
		return false
	}
	for _, ln := range s.listeners {
		if ln.stop == nil || ln.down.Load() {
			return false
		}
	}
	return true
}

// Close stops every listener and drops their connections.
func (s *Server) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.reaper.close()
		// Concurrently: gnet's Stop polls its loops every 500 ms.
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, ln := range s.listeners {
			if ln.stop == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := ln.stop(ctx); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("cannot stop listener %s: %w", ln.opts.Name, err))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	})
	return errors.Join(errs...)
}
