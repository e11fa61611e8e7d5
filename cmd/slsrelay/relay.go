package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/shardwriter"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// relay is the wired daemon: front end → WAL → writers → SLS.
type relay struct {
	cfg       *Config
	log       *slog.Logger
	server    *engine.Server
	wal       *wal.WAL
	writers   *shardwriter.Service
	thr       *engine.BacklogThrottle
	certs     []*engine.CertReloader
	level     *slog.LevelVar
	admin     *http.Server
	adminAddr string
	standIn   *slsfake.Server
	fakeCfg   slsfake.Config
	caFile    string // the generated CA clients must trust, if any
}

func startRelay(cfg *Config, log *slog.Logger) (_ *relay, err error) {
	r := &relay{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data_dir %q: %w", cfg.DataDir, err)
	}
	if r.wal, err = openWAL(cfg, log); err != nil {
		return nil, err
	}
	var catalog engine.Catalog
	if s := cfg.Catalog.Static; s != nil {
		catalog = &engine.StaticCatalog{Projects: s.Projects, Keys: s.AccessKeys}
	} else {
		if r.writers, err = r.startWriters(); err != nil {
			return nil, err
		}
		catalog = r.writers.Catalog()
	}
	opts, err := r.engineOptions()
	if err != nil {
		return nil, err
	}
	r.thr = engine.NewBacklogThrottle(throttleOptions(cfg), r.backlog)
	opts.Throttle = r.thr
	if r.server, err = engine.New(opts, catalog, r.wal); err != nil {
		return nil, err
	}
	r.rememberStored()
	if err := r.server.Start(); err != nil {
		return nil, err
	}
	if r.writers != nil {
		r.writers.Start()
	}
	if err := r.startAdmin(); err != nil {
		return nil, err
	}
	return r, nil
}

func throttleOptions(cfg *Config) engine.ThrottleOptions {
	return engine.ThrottleOptions{
		SoftBacklogBytes:   cfg.Throttle.SoftBacklogBytes,
		SoftBacklogAge:     cfg.Throttle.SoftBacklogAge,
		MaxThrottle:        cfg.Throttle.MaxThrottle,
		ProjectBytesPerSec: cfg.Throttle.ProjectBytesPerSec,
	}
}

func openWAL(cfg *Config, log *slog.Logger) (*wal.WAL, error) {
	sync, err := wal.ParseSyncPolicy(cfg.WAL.Sync)
	if err != nil {
		return nil, fmt.Errorf("wal.sync: %w", err)
	}
	key, err := walKey(cfg, log)
	if err != nil {
		return nil, err
	}
	dir := cfg.WAL.Dir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "wal")
	}
	return wal.Open(dir, wal.Options{
		Sync:          sync,
		SyncInterval:  cfg.WAL.SyncInterval,
		MaxDiskBytes:  cfg.WAL.MaxDiskBytes,
		HighWatermark: cfg.WAL.HighWatermark,
		EncryptionKey: key,
		Logger:        log,
	})
}

// walKey loads the key that encrypts AccessKeySecrets in the WAL, or makes
// one beside the data on first start when none is configured.
func walKey(cfg *Config, log *slog.Logger) ([]byte, error) {
	switch {
	case cfg.WAL.EncryptionKeyFile != "":
		k, err := wal.LoadKeyFile(cfg.WAL.EncryptionKeyFile)
		if err != nil {
			return nil, fmt.Errorf("wal.encryption_key_file: %w", err)
		}
		return k, nil
	case cfg.WAL.EncryptionKeyEnv != "":
		k, err := wal.KeyFromEnv(cfg.WAL.EncryptionKeyEnv)
		if err != nil {
			return nil, fmt.Errorf("wal.encryption_key_env: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(cfg.DataDir, "wal.key")
	k, err := wal.LoadKeyFile(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot use generated WAL key %q: %w", path, err)
	}
	raw := make([]byte, wal.KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(raw)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write WAL key %q: %w", path, err)
	}
	log.Warn("generated a WAL encryption key beside the data; set wal.encryption_key_file to keep it elsewhere", "path", path)
	return raw, nil
}

func (r *relay) startWriters() (*shardwriter.Service, error) {
	sc := r.cfg.SLS
	opts := shardwriter.Options{
		Endpoint:            sc.Endpoint,
		Compression:         sc.Compression,
		RetryInterval:       sc.RetryInterval,
		Linger:              sc.Linger,
		ShardBytesPerSec:    sc.ShardBytesPerSec,
		ShardRequestsPerSec: sc.ShardRequestsPerSec,
		LogGroup:            shardwriter.LogGroupLimits{MaxBytes: sc.MaxLogGroupBytes, MaxLogs: sc.MaxLogGroupLogs},
		Source:              sc.Source,
		Topic:               sc.Topic,
		Convert:             shardwriter.ConvertOptions{KeyField: sc.KeyField, HeadersAsFields: sc.HeadersAsFields, HeaderPrefix: sc.HeaderPrefix},
		Catalog:             shardwriter.CatalogOptions{StateFile: filepath.Join(r.cfg.DataDir, "catalog.json"), ShardRefresh: sc.ShardRefresh},
		Logger:              r.log,
	}
	if si := sc.StandIn; si != nil {
		fcfg := slsfake.DefaultConfig()
		if si.Config != "" {
			var err error
			if fcfg, err = slsfake.LoadConfig(si.Config); err != nil {
				return nil, fmt.Errorf("sls.stand_in.config: %w", err)
			}
		}
		fake, err := slsfake.New(fcfg)
		if err != nil {
			return nil, fmt.Errorf("sls.stand_in: %w", err)
		}
		listen := si.Listen
		if listen == "" {
			listen = "127.0.0.1:0"
		}
		if err := fake.Start(listen); err != nil {
			return nil, fmt.Errorf("sls.stand_in.listen: %w", err)
		}
		r.standIn, r.fakeCfg = fake, fcfg
		opts.Endpoint, opts.HTTPClient = fake.Endpoint(), fake.HTTPClient()
	}
	return shardwriter.New(r.wal, opts)
}

func (r *relay) engineOptions() (engine.Options, error) {
	cfg := r.cfg
	opts := engine.Options{
		NodeID:              cfg.NodeID,
		MaxRequestBytes:     cfg.Limits.MaxRequestBytes,
		MaxSASLRequestBytes: cfg.Limits.MaxSASLRequestBytes,
		MaxMessageBytes:     cfg.Limits.MaxMessageBytes,
		MaxInFlightPerConn:  cfg.Limits.MaxInFlightPerConn,
		MaxBufferedBytes:    cfg.Limits.MaxBufferedBytes,
		IdleTimeout:         cfg.Limits.IdleTimeout,
		PartialFrameTimeout: cfg.Limits.PartialFrameTimeout,
		Logger:              r.log,
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
					return opts, fmt.Errorf("listeners[%d].tls: %w", i, err)
				}
				cert, key, r.caFile = files.Cert, files.Key, files.CA
			}
			certs, err := engine.NewCertReloader(cert, key)
			if err != nil {
				return opts, fmt.Errorf("listeners[%d].tls: %w", i, err)
			}
			r.certs = append(r.certs, certs)
			if lo.TLS, err = certs.Config(lc.TLS.ClientCA); err != nil {
				return opts, fmt.Errorf("listeners[%d].tls: %w", i, err)
			}
		}
		opts.Listeners = append(opts.Listeners, lo)
	}
	return opts, nil
}

// dedupTail is how many of each stream's last entries rememberStored reads:
// the engine remembers an idempotent producer's last 5 batches per stream,
// so this covers a dozen producers interleaved.
const dedupTail = 64

// rememberStored gives the engine the idempotent producer batches at the
// end of each stream, so that a batch a producer retries across a restart
// of the relay (its answer was lost to the restart) is not stored twice.
// It reads a few bytes per entry, not the batches.
func (r *relay) rememberStored() {
	n := 0
	for _, k := range r.wal.Streams() {
		heads, err := r.wal.Tail(k, dedupTail, batch.RecordBatchHeaderLen)
		if err != nil {
			r.log.Warn("cannot read the stream's last entries; retries of them may be stored twice", "stream", k, "err", err)
			continue
		}
		for _, h := range heads {
			r.server.RememberStored(k, h.JSON, h.BaseOffset, h.Records, h.Head)
		}
		n += len(heads)
	}
	r.log.Debug("idempotent producer state rebuilt from the WAL", "entries", n)
}

// backlog reads how far delivery is behind, for the throttle.
func (r *relay) backlog() engine.Backlog { return engine.BacklogOf(r.wal.Stats()) }

// Close stops taking requests, then stops the writers at a clean
// position, then closes the WAL (which syncs it).
func (r *relay) Close() error { return r.Shutdown(context.Background()) }

// Shutdown is the SIGTERM path: stop reading requests and answer those
// already read (until ctx ends), then stop the writers at a clean position,
// then close the WAL, which syncs it.
func (r *relay) Shutdown(ctx context.Context) error {
	var errs []error
	if r.server != nil {
		// /readyz answers 503 from here on, while requests drain.
		errs = append(errs, r.server.Shutdown(ctx))
	}
	if r.admin != nil {
		errs = append(errs, r.admin.Close())
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
	if r.standIn != nil {
		fmt.Fprintf(w, "  SLS stand-in: http://%s (SDK endpoint %s)\n", r.standIn.Addr(), r.standIn.Endpoint())
		for _, p := range r.fakeCfg.Projects {
			var topics []string
			for _, ls := range p.Logstores {
				topics = append(topics, fmt.Sprintf("%s (%d partitions)", ls.Name, ls.ShardCount))
			}
			fmt.Fprintf(w, "  project (SASL username): %s\n  topics: %s; add .json for JSON fields\n", p.Name, strings.Join(topics, ", "))
		}
		// The stand-in's keys are demo keys, printed so a person can try it.
		for _, k := range r.fakeCfg.AccessKeys {
			fmt.Fprintf(w, "  SASL password: %s#%s\n", k.ID, k.Secret)
		}
	}
}
