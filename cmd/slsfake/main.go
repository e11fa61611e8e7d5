// Command slsfake runs the local Alibaba Cloud Log Service stand-in
// (bench/slsfake) as its own process, for the bench and for trying the relay
// by hand.
//
//	slsfake [-listen 127.0.0.1:9180] [-config file.yaml] [-print-config]
//
// Without -config it serves slsfake.DefaultConfig(): project test-project-1
// with test-logstore-1 (2 shards) and test-logstore-2 (4 shards), AccessKey
// demo-akid / demo-aksecret. SDK clients reach it with
// slsfake.NewHTTPClient(listenAddr, endpointHost) and endpoint
// "<endpointHost>:<port>"; the JSON control API (faults, outages, splits,
// quotas, the server clock, key and project states, stats) is under /_ on
// the same address. What the stand-in refuses, and on which SLS page that
// rule stands, is in bench/slsfake/CONTRACT.md.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/slsrelay/slsrelay/bench/slsfake"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9180", "address to serve the SLS API and the control API on")
	configPath := flag.String("config", "", "YAML config (default: the built-in default config)")
	printConfig := flag.Bool("print-config", false, "print the config that would be served, as YAML, and exit")
	flag.Parse()

	if err := run(*listen, *configPath, *printConfig); err != nil {
		fmt.Fprintln(os.Stderr, "slsfake:", err)
		os.Exit(1)
	}
}

func run(listen, configPath string, printConfig bool) error {
	cfg := slsfake.DefaultConfig()
	if configPath != "" {
		var err error
		if cfg, err = slsfake.LoadConfig(configPath); err != nil {
			return err
		}
	}
	if printConfig {
		enc := yaml.NewEncoder(os.Stdout)
		defer enc.Close()
		if err := enc.Encode(cfg); err != nil {
			return fmt.Errorf("cannot print the config: %w", err)
		}
		return nil
	}
	s, err := slsfake.New(cfg)
	if err != nil {
		return err
	}
	if err := s.Start(listen); err != nil {
		return err
	}
	defer s.Close()
	slog.Info("slsfake serving", "addr", s.Addr(), "sdkEndpoint", s.Endpoint(),
		"howToDial", fmt.Sprintf("slsfake.NewHTTPClient(%q, %q)", s.Addr(), s.Endpoint()),
		"control", "http://"+s.Addr()+"/_stats")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	st := s.Stats()
	slog.Info("slsfake stopping", "putLogs", st.PutLogs, "putRawBytes", st.PutRawBytes, "droppedLogs", st.DroppedLogs, "errors", st.Errors)
	return nil
}
