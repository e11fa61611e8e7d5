// Command slsrelay is the relay daemon: Kafka producers in, Alibaba Cloud
// Log Service out. `slsrelay -config FILE` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
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
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "slsrelay:", err)
		os.Exit(2)
	}
	log, level := newLogger(cfg.Log)
	// Signals are caught before start-up (WAL recovery can take a while):
	// a SIGHUP then must not end the process.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	r, err := startRelay(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	r.level = level
	r.printWelcome(os.Stdout)

	for s := range sig {
		if s == syscall.SIGHUP {
			r.reload(*configPath)
			continue
		}
		log.Info("shutting down", "signal", s.String())
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		err := r.Shutdown(ctx)
		cancel()
		if err != nil {
			log.Error("shutdown", "err", err)
			os.Exit(1)
		}
		return
	}
}

// shutdownGrace bounds how long SIGTERM waits for requests in flight.
const shutdownGrace = 20 * time.Second

func newLogger(c LogConfig) (*slog.Logger, *slog.LevelVar) {
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
