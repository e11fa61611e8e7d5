package main

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/wal"
)

// relay is the wired daemon.
type relay struct {
	cfg    *Config
	server *engine.Server
	caFile string // the generated CA clients must trust, if any
}

func startRelay(cfg *Config, log *slog.Logger) (*relay, error) {
	r := &relay{cfg: cfg}
	opts := engine.Options{
		NodeID:              cfg.NodeID,
		MaxRequestBytes:     cfg.Limits.MaxRequestBytes,
		MaxSASLRequestBytes: cfg.Limits.MaxSASLRequestBytes,
		MaxMessageBytes:     cfg.Limits.MaxMessageBytes,
		MaxInFlightPerConn:  cfg.Limits.MaxInFlightPerConn,
		Logger:              log,
	}
	for i, lc := range cfg.Listeners {
		lo := engine.ListenerOptions{Name: lc.Name, Protocol: lc.Protocol, Bind: lc.Bind, Advertised: lc.Advertised}
		if lc.Project != "" {
			lo.Principal = &engine.Principal{Project: lc.Project, Credential: wal.Credential{AccessKeyID: lc.AccessKeyID, AccessKeySecret: lc.AccessKeySecret}}
		}
		if lc.Protocol == engine.SASLSSL {
			cert, key := lc.TLS.Cert, lc.TLS.Key
			if cert == "" {
				files, err := engine.EnsureSelfSigned(cfg.tlsDir(), lc.TLS.SelfSignedHosts)
				if err != nil {
					return nil, fmt.Errorf("listeners[%d].tls: %w", i, err)
				}
				cert, key, r.caFile = files.Cert, files.Key, files.CA
			}
			certs, err := engine.NewCertReloader(cert, key)
			if err != nil {
				return nil, fmt.Errorf("listeners[%d].tls: %w", i, err)
			}
			if lo.TLS, err = certs.Config(lc.TLS.ClientCA); err != nil {
				return nil, fmt.Errorf("listeners[%d].tls: %w", i, err)
			}
		}
		opts.Listeners = append(opts.Listeners, lo)
	}
	catalog := &engine.StaticCatalog{Projects: cfg.Catalog.Static.Projects, Keys: cfg.Catalog.Static.AccessKeys}
	// Until the WAL is wired in, batches are acknowledged and dropped.
	appender := &engine.MemoryAppender{Discard: true}
	srv, err := engine.New(opts, catalog, appender)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	r.server = srv
	return r, nil
}

func (r *relay) Close() error { return r.server.Close() }

// printWelcome tells a person how to point a shipper at the relay.
func (r *relay) printWelcome(w io.Writer) {
	fmt.Fprintln(w, "slsrelay is running.")
	for _, lc := range r.cfg.Listeners {
		fmt.Fprintf(w, "  %-15s %s\n", lc.Protocol, r.server.Addr(lc.Name))
	}
	if r.caFile != "" {
		fmt.Fprintf(w, "  TLS CA for clients: %s\n", r.caFile)
	}
	if s := r.cfg.Catalog.Static; s != nil {
		for project, stores := range s.Projects {
			var topics []string
			for name, n := range stores {
				topics = append(topics, fmt.Sprintf("%s (%d partitions)", name, n))
			}
			sort.Strings(topics)
			fmt.Fprintf(w, "  project (SASL username): %s\n  topics: %s\n", project, strings.Join(topics, ", "))
		}
		// A static catalog only serves local trials, so its demo keys are
		// printed whole; real AccessKeys never reach a log or the terminal.
		for akid, secret := range s.AccessKeys {
			fmt.Fprintf(w, "  SASL password: %s#%s\n", akid, secret)
		}
	}
}
