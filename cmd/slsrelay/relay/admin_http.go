package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// startAdmin serves /metrics (Prometheus exposition), /healthz (alive),
// /readyz (listeners up, WAL open, not stopping), /wal/status (the table of
// `slsrelay wal status`, or its JSON with Accept: application/json;
// read-only), /shippers (the connected shippers as
// JSON, for `slsrelay clients`), the status page at / and, if enabled, /debug/pprof on the admin
// listener.
func (r *Relay) startAdmin() error {
	ac := r.cfg.Admin
	if ac.Listen == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		metrics.WritePrometheus(w, true)
		r.writeMetrics(w)
		if r.server != nil {
			writeShipperMetrics(w, r.server.Shippers())
		}
	})
	mux.HandleFunc("/shippers", r.serveShippers)
	mux.HandleFunc("/", r.serveStatus)
	mux.HandleFunc("/wal/status", r.serveWALStatus)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		// Alive unless a Kafka listener stopped accepting on its own:
		// only a restart brings it back (engine/listener_down.go).
		if down := r.stoppedListeners(); len(down) > 0 {
			http.Error(w, fmt.Sprintf("listeners stopped accepting connections: %s; restart the relay", strings.Join(down, ", ")), http.StatusServiceUnavailable)
			return
		}
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

// stoppedListeners names the Kafka listeners that stopped accepting on
// their own (none before Start).
func (r *Relay) stoppedListeners() []string {
	if r.server == nil {
		return nil
	}
	return r.server.StoppedListeners()
}

func (r *Relay) ready() error {
	switch {
	case r.server == nil || !r.server.Ready():
		return errors.New("listeners not serving")
	case r.wal == nil:
		return errors.New("WAL not open")
	}
	return nil
}

// writeReady is /readyz as a gauge, from the same check: 1 ready, 0 not
// (starting, stopping, listeners down or no WAL).
func (r *Relay) writeReady(w io.Writer) {
	ready := uint64(0)
	if r.ready() == nil {
		ready = 1
	}
	metrics.WriteGaugeUint64(w, "slsrelay_ready", ready)
}

// writeMetrics adds what is read from the relay's state, the WAL and its
// file system at scrape time.
func (r *Relay) writeMetrics(w io.Writer) {
	r.writeReady(w)
	if r.wal == nil {
		return
	}
	writeWALFilesystem(w, r.cfg.WALDir())
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
