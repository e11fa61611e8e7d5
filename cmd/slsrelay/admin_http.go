package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"reflect"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// startAdmin serves /metrics (Prometheus exposition), /healthz (alive),
// /readyz (listeners up, WAL open, not stopping), /wal/status (the table of
// `slsrelay wal status`, read-only) and, if enabled, /debug/pprof on the
// admin listener.
func (r *relay) startAdmin() error {
	ac := r.cfg.Admin
	if ac.Listen == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		metrics.WritePrometheus(w, true)
		r.writeMetrics(w)
	})
	mux.HandleFunc("/wal/status", func(w http.ResponseWriter, _ *http.Request) {
		if r.wal == nil {
			http.Error(w, "WAL not open", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		printWALStatus(w, r.wal.Stats())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	if ac.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", ac.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen: %w", err)
	}
	r.adminAddr = ln.Addr().String()
	r.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := r.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("admin listener stopped", "err", err)
		}
	}()
	r.log.Info("admin listening", "addr", r.adminAddr, "pprof", ac.Pprof)
	return nil
}

func (r *relay) ready() error {
	switch {
	case r.server == nil || !r.server.Ready():
		return errors.New("listeners not serving")
	case r.wal == nil:
		return errors.New("WAL not open")
	}
	return nil
}

// writeMetrics adds what is read from the WAL and writers at scrape time.
func (r *relay) writeMetrics(w io.Writer) {
	st := r.wal.Stats()
	metrics.WriteGaugeUint64(w, "slsrelay_wal_disk_bytes", uint64(st.DiskBytes))
	metrics.WriteGaugeUint64(w, "slsrelay_wal_max_disk_bytes", uint64(st.MaxDiskBytes))
	metrics.WriteGaugeFloat64(w, "slsrelay_wal_pressure", st.Pressure)
	metrics.WriteGaugeUint64(w, "slsrelay_wal_pending_bytes", uint64(st.PendingBytes))
	metrics.WriteGaugeUint64(w, "slsrelay_wal_pending_entries", uint64(st.PendingEntries))
	metrics.WriteGaugeUint64(w, "slsrelay_wal_dead_letters", uint64(st.DeadLetters))
	metrics.WriteCounterUint64(w, "slsrelay_wal_group_commits_total", uint64(st.Groups))
	metrics.WriteCounterUint64(w, "slsrelay_wal_fsyncs_total", uint64(st.Syncs))
	var oldest time.Duration
	for _, s := range st.Streams {
		oldest = max(oldest, s.OldestPending)
	}
	metrics.WriteGaugeFloat64(w, "slsrelay_wal_oldest_pending_seconds", oldest.Seconds())
}

// reload applies what a SIGHUP may change without dropping connections:
// the log level, TLS certificates (re-read from their files) and the
// throttle's quotas. Other changes need a restart; they are named in the log.
func (r *relay) reload(path string) {
	cfg, err := loadConfig(path)
	if err != nil {
		r.log.Error("reload: config not applied", "err", err)
		return
	}
	if r.level != nil {
		var level slog.Level
		_ = level.UnmarshalText([]byte(cfg.Log.Level))
		r.level.Set(level)
	}
	for _, c := range r.certs {
		if err := c.Reload(); err != nil {
			r.log.Error("reload: TLS files that could not be read are kept as they were", "err", err)
		}
	}
	r.thr.SetOptions(throttleOptions(cfg))
	r.log.Info("reloaded", "config", path, "log_level", cfg.Log.Level)
	if changed := restartOnlyChanges(r.cfg, cfg); len(changed) > 0 {
		r.log.Warn("reload: these changes take effect at the next restart", "keys", changed)
	}
}

// restartOnlyChanges names the top-level sections that differ between two
// configs and that a reload does not apply.
func restartOnlyChanges(old, cur *Config) []string {
	var changed []string
	f := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			changed = append(changed, key)
		}
	}
	f("node_id", old.NodeID, cur.NodeID)
	f("data_dir", old.DataDir, cur.DataDir)
	f("log.format", old.Log.Format, cur.Log.Format)
	f("listeners", old.Listeners, cur.Listeners)
	f("limits", old.Limits, cur.Limits)
	f("wal", old.WAL, cur.WAL)
	f("sls", old.SLS, cur.SLS)
	f("catalog", old.Catalog, cur.Catalog)
	f("admin", old.Admin, cur.Admin)
	return changed
}
