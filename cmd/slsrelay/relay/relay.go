// Package relay assembles slsrelay: the Kafka front end (engine), the WAL
// (wal) and the SLS writers (shardwriter), joined as configured. It is the
// one place they are wired together: the daemon (cmd/slsrelay), the bench's
// relay targets (bench/targets) and the end-to-end tests all run a relay
// built by New, so what they measure and test is what users run.
//
// The engine's inputs that come from the WAL are derived here as well (see
// wal_inputs.go): the idempotent producers' last batches, rebuilt from the
// WAL's tail at start, and the backlog that drives the throttle.
package relay

import (
	"context"
	"errors"
	"fmt"
	"github.com/slsrelay/slsrelay/engine/users"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/shardwriter"
	"github.com/slsrelay/slsrelay/wal"
)

// Deps are what a relay takes from its host besides the configuration.
// Every field is optional.
type Deps struct {
	// Logger receives the relay's log. Default: discarded.
	Logger *slog.Logger
	// Level is the level Reload sets from log.level; nil: the level is not
	// reloadable.
	Level *slog.LevelVar
	// SLSClient carries the writers' requests to sls.endpoint instead of
	// the SDK's default client (the bench: a client that dials a stand-in
	// run in another process under its endpoint name).
	SLSClient *http.Client
	// Appender, if set, takes the place of the WAL and the writers:
	// accepted batches go there and nothing is delivered. It needs
	// catalog.static. The bench's ack-path target uses it to measure the
	// front end alone.
	Appender engine.Appender
}

// Relay is a relay built from a Config: listeners → WAL → writers → SLS.
// New builds it, Start serves, Shutdown stops it. Reload, Addrs and Stats
// are safe to call concurrently with each other and with serving, once
// Start has returned.
//
// Relay has no mutex: New sets every field and Start sets admin,
// adminAddr and control; after that the fields are only read. What changes while the
// relay runs is inside the parts, each safe for concurrent use (the
// throttle's options, the certificates, the log level).
type Relay struct {
	cfg     *Config // as New got it; Reload compares against it
	deps    Deps
	log     *slog.Logger
	server  *engine.Server
	wal     *wal.WAL             // nil with Deps.Appender
	writers *shardwriter.Service // nil with Deps.Appender
	thr     *engine.BacklogThrottle
	certs   []*engine.CertReloader // one per SASL_SSL listener, for Reload
	standIn *slsfake.Server        // sls.stand_in, or nil
	fakeCfg slsfake.Config
	caFile  string           // the generated CA clients must trust, if any
	users   *users.Directory // the auth section's relay users, or nil
	admin   *http.Server
	// adminAddr is set by Start before the admin listener serves.
	adminAddr string
	// control is the control socket, set by Start; nil when off.
	control *controlServer
}

// New opens the WAL, builds the writers, the catalog and the front end as
// cfg says, and rebuilds the engine's state from the WAL. Nothing listens
// until Start. On error, whatever was opened is closed again.
func New(cfg *Config, deps Deps) (_ *Relay, err error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Relay{cfg: cfg, deps: deps, log: deps.Logger}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data_dir %q: %w", cfg.DataDir, err)
	}
	app := deps.Appender
	if app == nil {
		if r.wal, err = OpenWAL(cfg, r.log); err != nil {
			return nil, err
		}
		if r.writers, err = r.newWriters(); err != nil {
			return nil, err
		}
		app = r.wal
	} else if cfg.Catalog.Static == nil {
		return nil, errors.New("relay: an Appender in place of the WAL needs catalog.static")
	}
	opts, err := r.engineOptions()
	if err != nil {
		return nil, err
	}
	if cfg.Auth != nil {
		// Held AccessKeys may be sealed with the WAL's key.
		key, err := walKey(cfg, r.log)
		if err != nil {
			return nil, err
		}
		if r.users, err = cfg.Auth.Open(key); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		opts.Users = r.users // never a nil *Directory: the interface would not be nil
	}
	if r.wal != nil {
		r.thr = engine.NewBacklogThrottle(cfg.Throttle, r.backlog)
		opts.Throttle = r.thr
	}
	if r.server, err = engine.New(opts, r.catalog(), app); err != nil {
		return nil, err
	}
	if r.wal != nil {
		r.rememberStored()
	}
	return r, nil
}

// catalog is what the front end asks which projects, logstores and keys
// exist: catalog.static's fixed list when set (no request to SLS), else
// SLS itself through the writers' cache.
func (r *Relay) catalog() engine.Catalog {
	if s := r.cfg.Catalog.Static; s != nil {
		return &engine.StaticCatalog{Projects: s.Projects, Keys: s.AccessKeys}
	}
	return r.writers.Catalog()
}

// Start opens the listeners, starts the writers, the admin listener and
// the control socket. The control socket is bound first (it needs only the
// WAL), and the admin address is bound and held while the Kafka listeners
// open, so that a clash on either stops start-up before producers can
// connect; startAdmin binds the admin address again once they are up, as
// its /readyz may only ask the engine after Server.Start has returned.
func (r *Relay) Start() error {
	if err := r.startControl(); err != nil {
		return err
	}
	var held net.Listener
	if listen := r.cfg.Admin.Listen; listen != "" {
		var err error
		if held, err = net.Listen("tcp", listen); err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
	}
	err := r.server.Start()
	if held != nil {
		held.Close()
	}
	if err != nil {
		return err
	}
	if r.writers != nil {
		r.writers.Start()
	}
	return r.startAdmin()
}

// Close is Shutdown without a deadline for requests in flight.
func (r *Relay) Close() error { return r.Shutdown(context.Background()) }

// Shutdown stops at once (SIGINT, tests): stop reading requests and answer
// those already read (until ctx ends), then stop the writers at a clean
// position, then close the WAL, which syncs it, and last the stand-in.
func (r *Relay) Shutdown(ctx context.Context) error { return r.stop(ctx, false) }

// Drain is the SIGTERM path, a rolling update's or a fleet node's: /readyz
// answers 503 at once (Kubernetes' readiness and a load balancer's health
// check take the node out), requests already read are answered, connected
// producers are told to move (NOT_LEADER_OR_FOLLOWER; idle connections are
// closed) while the node keeps listening for limits.drain_linger, then it
// stops as Shutdown does. What the WAL holds is delivered by the writers
// until they stop, and the rest after the restart.
func (r *Relay) Drain(ctx context.Context) error { return r.stop(ctx, true) }

func (r *Relay) stop(ctx context.Context, drain bool) error {
	var errs []error
	switch {
	case r.server != nil && drain:
		errs = append(errs, r.server.Drain(ctx))
	case r.server != nil:
		// /readyz answers 503 from here on, while requests drain.
		errs = append(errs, r.server.Shutdown(ctx))
	}
	if r.admin != nil {
		errs = append(errs, r.admin.Close())
	}
	if r.control != nil {
		// A replay in flight finishes before the WAL closes.
		errs = append(errs, r.control.stop(ctx))
	}
	if r.thr != nil {
		r.thr.Close()
	}
	if r.writers != nil {
		errs = append(errs, r.writers.Close())
	}
	if r.wal != nil {
		errs = append(errs, r.wal.Close())
	}
	if r.standIn != nil {
		errs = append(errs, r.standIn.Close())
	}
	return errors.Join(errs...)
}

// Addrs is where a started relay can be reached.
type Addrs struct {
	// Listeners maps a listener's name to its bound host:port.
	Listeners map[string]string
	// Admin is the admin listener's bound host:port; empty without one.
	Admin string
	// CA is the generated CA file clients of a self-signed SASL_SSL
	// listener must trust; empty when certificates are configured.
	CA string
	// StandIn is the in-process SLS stand-in (sls.stand_in), or nil.
	StandIn *slsfake.Server
	// StandInConfig is the stand-in's projects and keys.
	StandInConfig slsfake.Config
}

// Addrs tells where the relay listens; call it after Start.
func (r *Relay) Addrs() Addrs {
	a := Addrs{Listeners: map[string]string{}, Admin: r.adminAddr, CA: r.caFile, StandIn: r.standIn, StandInConfig: r.fakeCfg}
	for _, lc := range r.cfg.Listeners {
		name := lc.Name
		if name == "" {
			name = lc.Protocol
		}
		a.Listeners[name] = r.server.Addr(name)
	}
	return a
}

// Config is the configuration the relay was built from; it must not be
// modified.
func (r *Relay) Config() *Config { return r.cfg }

// ListenerDown delivers the name of a Kafka listener that stopped
// accepting connections on its own, once each (nil before Start: a
// receive then waits forever). The relay cannot bring such a listener
// back; the daemon drains and exits non-zero, so its service manager
// restarts it (see engine/listener_down.go).
func (r *Relay) ListenerDown() <-chan string {
	if r.server == nil {
		return nil
	}
	return r.server.ListenerDown()
}

// Stats samples the WAL: backlog, disk use, pressure. Zero with
// Deps.Appender.
func (r *Relay) Stats() wal.Stats {
	if r.wal == nil {
		return wal.Stats{}
	}
	return r.wal.Stats()
}

// WAL is the relay's WAL (nil with Deps.Appender), for tests and admin
// views; the relay owns it.
func (r *Relay) WAL() *wal.WAL { return r.wal }

// Writers is the relay's SLS writers (nil with Deps.Appender), for tests.
func (r *Relay) Writers() *shardwriter.Service { return r.writers }

// Throttle is the throttle fed by the WAL's backlog (nil with
// Deps.Appender), for tests.
func (r *Relay) Throttle() *engine.BacklogThrottle { return r.thr }
