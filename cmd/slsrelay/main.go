// Command slsrelay is the relay daemon: Kafka producers in, Alibaba Cloud
// Log Service out. `slsrelay run -config FILE` (or `slsrelay -config FILE`)
// runs it; `slsrelay help` lists the other commands (commands.go). The
// relay itself is assembled by package relay; this command adds flags,
// subcommands, signals and the welcome text.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/engine"
)

func main() {
	os.Exit(runCLI(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const runUsage = `usage: slsrelay run [-config FILE]
       slsrelay -config FILE
Runs the relay until SIGINT (stop now) or SIGTERM (drain, then stop);
SIGHUP re-reads the configuration (its auth section included) and the users file.`

// runDaemon runs the relay: `slsrelay run`, or flags and no word.
func runDaemon(args []string, std stdio) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	configPath := fs.String("config", "configs/local.yaml", "configuration file")
	pos, code, ok := parseFlags(fs, args, runUsage, std)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(fs, runUsage, std, fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	cfg, err := relay.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(std.errOut, "slsrelay:", err)
		return 2
	}
	log, level := newLogger(cfg.Log, std.errOut)
	// Signals are caught before start-up (WAL recovery can take a while):
	// a SIGHUP then must not end the process.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	r, err := relay.New(cfg, relay.Deps{Logger: log, Level: level})
	if err == nil {
		err = r.Start()
	}
	if err != nil {
		log.Error("cannot start", "err", err)
		if r != nil {
			r.Close()
		}
		return 1
	}
	printWelcome(std.out, cfg, r.Addrs())

	for {
		var s os.Signal
		select {
		case s = <-sig:
		case name := <-r.ListenerDown():
			// Only a new process brings the listener back: drain, as on
			// SIGTERM, and exit non-zero so that systemd
			// (Restart=on-failure) or Kubernetes starts the relay again.
			log.Error("a Kafka listener stopped accepting connections: draining, then exiting to be restarted", "listener", name)
			if err := stopRelay(r, cfg, syscall.SIGTERM); err != nil {
				log.Error("shutdown", "err", err)
			}
			return 1
		}
		if s == syscall.SIGHUP {
			reload(r, *configPath, log)
			continue
		}
		log.Info("shutting down", "signal", s.String())
		if err := stopRelay(r, cfg, s); err != nil {
			log.Error("shutdown", "err", err)
			return 1
		}
		return 0
	}
}

// stopRelay stops r as signal s asks. SIGTERM (systemd, Kubernetes, a
// rolling update) drains: producers are moved to other nodes first.
// SIGINT (a terminal) stops at once.
func stopRelay(r *relay.Relay, cfg *relay.Config, s os.Signal) error {
	stop, grace := r.Shutdown, shutdownGrace
	if s == syscall.SIGTERM {
		stop, grace = r.Drain, shutdownGrace+drainLinger(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return stop(ctx)
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

func newLogger(c relay.LogConfig, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level))
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}
