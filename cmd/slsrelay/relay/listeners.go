package relay

import (
	"fmt"

	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/wal"
)

// engineOptions is the front end's part of the configuration: limits,
// node id and listeners, with their TLS certificates loaded (or generated, for
// tls.self_signed) and kept for Reload.
func (r *Relay) engineOptions() (engine.Options, error) {
	cfg := r.cfg
	opts := cfg.Limits
	opts.NodeID, opts.BrokerID, opts.Logger = cfg.NodeID, cfg.BrokerID, r.log
	for i, lc := range cfg.Listeners {
		lo := lc.ListenerOptions
		if lc.Project != "" {
			lo.Principal = &engine.Principal{Project: lc.Project, Credential: wal.Credential{AccessKeyID: lc.AccessKeyID, AccessKeySecret: lc.AccessKeySecret}}
		}
		if lc.Protocol == engine.SASLSSL || lc.Protocol == engine.SSL {
			cert, key := lc.TLSFiles.Cert, lc.TLSFiles.Key
			if cert == "" {
				files, err := engine.EnsureSelfSigned(cfg.TLSDir(), lc.TLSFiles.SelfSignedHosts)
				if err != nil {
					return opts, fmt.Errorf("listeners[%d].tls: %w", i, err)
				}
				cert, key, r.caFile = files.Cert, files.Key, files.CA
			}
			certs, err := engine.NewCertReloader(cert, key)
			if err != nil {
				return opts, fmt.Errorf("listeners[%d].tls: %w", i, err)
			}
			r.certs = append(r.certs, certs)
			if lo.TLS, err = certs.Config(lc.TLSFiles.ClientCA); err != nil {
				return opts, fmt.Errorf("listeners[%d].tls: %w", i, err)
			}
		}
		opts.Listeners = append(opts.Listeners, lo)
	}
	return opts, nil
}
