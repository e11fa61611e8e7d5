// Command slsrelay is the relay daemon: Kafka producers in, Alibaba Cloud
// Log Service out. `slsrelay -config FILE` runs it. The relay itself is
// assembled by package relay; this command adds flags, subcommands,
// signals and the welcome text.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/slsrelay/slsrelay/engine"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "user" {
		os.Exit(runUser(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if handled, code := runAdmin(os.Args[1:], os.Stdout, os.Stderr); handled {
		os.Exit(code)
	}
	configPath := flag.String("config", "configs/local.yaml", "configuration file")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: slsrelay [-config FILE]        run the relay")
		fmt.Fprintln(os.Stderr, "       slsrelay check-config FILE      validate a configuration")
		fmt.Fprintln(os.Stderr, "       slsrelay wal status             streams, offsets, backlog, disk")
		fmt.Fprintln(os.Stderr, "       slsrelay dlq list|replay|drop   inspect and act on dead letters")
		fmt.Fprintln(os.Stderr, "       slsrelay version")
		flag.PrintDefaults()
	}
	flag.Parse()
	cfg, err := relay.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "slsrelay:", err)
		os.Exit(2)
	}
	log, level := newLogger(cfg.Log)
	// Signals are caught before start-up (WAL recovery can take a while):
	// a SIGHUP then must not end the process.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	r, err := relay.New(cfg, relay.Deps{Logger: log, Level: level})
	if err == nil {
		err = r.Start()
	}
	if err != nil {
		log.Error("cannot start", "err", err)
		if r != nil {
			r.Close()
		}
		os.Exit(1)
	}
	printWelcome(os.Stdout, cfg, r.Addrs())

	for s := range sig {
		if s == syscall.SIGHUP {
			reload(r, *configPath, log)
			continue
		}
		log.Info("shutting down", "signal", s.String())
		// SIGTERM (systemd, Kubernetes, a rolling update) drains: producers
		// are moved to other nodes first. SIGINT (a terminal) stops at once.
		stop, grace := r.Shutdown, shutdownGrace
		if s == syscall.SIGTERM {
			stop, grace = r.Drain, shutdownGrace+drainLinger(cfg)
		}
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		err := stop(ctx)
		cancel()
		if err != nil {
			log.Error("shutdown", "err", err)
			os.Exit(1)
		}
		return
	}
}

// reload re-reads the configuration file on SIGHUP; a file that does not
// load leaves everything as it was.
func reload(r *relay.Relay, path string, log *slog.Logger) {
	cfg, err := relay.LoadConfig(path)
	if err != nil {
		log.Error("reload: config not applied", "err", err)
		return
	}
	r.Reload(cfg)
}

// shutdownGrace bounds how long a stop waits for requests in flight; a
// SIGTERM's drain gets limits.drain_linger on top.
const shutdownGrace = 20 * time.Second

// drainLinger is limits.drain_linger, or the engine's default.
func drainLinger(cfg *relay.Config) time.Duration {
	if d := cfg.Limits.DrainLinger; d > 0 {
		return d
	}
	return engine.DefaultDrainLinger
}

func newLogger(c relay.LogConfig) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level))
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), level
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), level
}
