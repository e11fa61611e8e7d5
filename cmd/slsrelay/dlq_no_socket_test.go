package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
)

// TestE2ENoControlSocketHint: a running relay (it holds the WAL) that has
// no control socket — admin.control_socket off, or the default path under
// a deep data_dir too long for a Unix socket — makes the dlq and wal status
// commands say so and what to set, not ask whether it is still starting.
func TestE2ENoControlSocketHint(t *testing.T) {
	t.Parallel()
	f := func(name string, mod func(*relay.Config), want string) {
		t.Helper()
		cfg := e2eConfig(t)
		mod(cfg)
		rl, err := relay.New(cfg, relay.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		defer rl.Close()
		cfgPath := writeConfig(t, cfg)
		for _, args := range [][]string{{"dlq", "list"}, {"dlq", "drop", "-all"}, {"wal", "status"}} {
			code, out, stderr := cliRun(t, "", nil, append(args, "-config", cfgPath)...)
			if code != 1 || out != "" || !strings.Contains(stderr, want) || strings.Contains(stderr, "still starting") {
				t.Errorf("%s: %v: exit %d, stdout %q, stderr %q; want 1 and %q", name, args, code, out, stderr, want)
			}
		}
	}
	f("off", func(c *relay.Config) { c.Admin.ControlSocket = relay.ControlSocketOff },
		"admin.control_socket off: stop it first, or set admin.control_socket to a socket path")
	f("deep data_dir", func(c *relay.Config) { c.DataDir = filepath.Join(c.DataDir, strings.Repeat("d", 110)) },
		"too long for a Unix socket: stop it first, or set admin.control_socket to a shorter path")
}
