// Package relaytest starts a relay for a test: configs/local.yaml (what
// `make run` starts) on loopback ports the system picks and a fresh
// data_dir, built by package relay as the daemon builds it, shut down when
// the test ends. It hands back the bound addresses, the generated CA, the
// in-process SLS stand-in and the ways kafkatest's clients reach each
// listener.
package relaytest

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/configs"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// What configs/local.yaml serves: the stand-in's demo project and key,
// which its PLAINTEXT listener writes as.
const (
	Project  = "test-project-1"
	AKID     = "demo-akid"
	Secret   = "demo-aksecret"
	Password = AKID + "#" + Secret
)

// Config returns configs/local.yaml as parsed, moved to loopback ports
// the system picks (listeners, admin, stand-in) and a fresh data_dir.
func Config(t testing.TB) *relay.Config {
	t.Helper()
	cfg, err := relay.ParseConfig("configs/local.yaml", configs.Local)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	for i := range cfg.Listeners {
		cfg.Listeners[i].Bind = "127.0.0.1:0"
	}
	if cfg.Admin.Listen != "" {
		cfg.Admin.Listen = "127.0.0.1:0"
	}
	if cfg.SLS.StandIn != nil {
		cfg.SLS.StandIn.Listen = "127.0.0.1:0"
	}
	return cfg
}

// StandInFile writes fc where sls.stand_in.config can name it.
func StandInFile(t testing.TB, fc slsfake.Config) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slsfake.yaml")
	writeYAML(t, path, fc)
	return path
}

// WriteConfig writes cfg to path as a configuration file, and fails the
// test unless the file loads back strictly.
func WriteConfig(t testing.TB, path string, cfg *relay.Config) {
	t.Helper()
	b := writeYAML(t, path, cfg)
	if _, err := relay.LoadConfig(path); err != nil {
		t.Fatalf("the configuration written does not load: %v\n%s", err, b)
	}
}

func writeYAML(t testing.TB, path string, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// Relay is a relay started for a test.
type Relay struct {
	*relay.Relay
	Addrs relay.Addrs
	// Plain and SASLSSL reach the PLAINTEXT and SASL_SSL listeners as
	// the demo project and key (SASLSSL trusting the generated CA).
	Plain, SASLSSL kafkatest.Listener
	// TLS trusts the generated CA; nil without one.
	TLS *tls.Config
	// Log is the relay's log, shown when the test fails.
	Log *LogBuffer

	closeOnce sync.Once
	closeErr  error
}

// Start starts a relay on cfg as it is (a restart on the same data_dir
// passes the config of the relay it replaces). It is shut down when the
// test ends, which fails the test if that fails. SLSRELAY_TEST_LOG=1
// copies the relay's log, at debug level, to stderr.
func Start(t testing.TB, cfg *relay.Config) *Relay {
	t.Helper()
	logs := &LogBuffer{}
	var h slog.Handler = slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})
	if os.Getenv("SLSRELAY_TEST_LOG") != "" {
		h = slog.NewTextHandler(io.MultiWriter(logs, os.Stderr), &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	rl, err := relay.New(cfg, relay.Deps{Logger: slog.New(h)})
	if err == nil {
		if err = rl.Start(); err != nil {
			rl.Close()
		}
	}
	if err != nil {
		t.Fatalf("starting the relay: %v\n%s", err, logs.String())
	}
	r := &Relay{Relay: rl, Addrs: rl.Addrs(), Log: logs}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("closing the relay: %v", err)
		}
		if t.Failed() {
			t.Logf("relay log:\n%s", logs.String())
		}
	})
	if r.Addrs.CA != "" {
		if r.TLS, err = kafkatest.ClientTLS(r.Addrs.CA); err != nil {
			t.Fatal(err)
		}
	}
	r.Plain = kafkatest.Listener{Addr: r.Addrs.Listeners["PLAINTEXT"]}
	r.SASLSSL = kafkatest.Listener{Addr: r.Addrs.Listeners["SASL_SSL"], TLS: r.TLS, CAFile: r.Addrs.CA, User: Project, Password: Password}
	return r
}

// StartError is for a config start-up must refuse: it starts a relay on
// cfg, closes it at once if it started, and returns New's or Start's
// error (nil when it started).
func StartError(cfg *relay.Config) error {
	rl, err := relay.New(cfg, relay.Deps{})
	if err != nil {
		return err
	}
	err = rl.Start()
	rl.Close()
	return err
}

// Close shuts the relay down once; later calls return the first result.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.Relay.Close() })
	return r.closeErr
}

// LogBuffer collects a relay's log. Safe for concurrent use.
type LogBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Count returns how many log lines contain s.
func (l *LogBuffer) Count(s string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}
