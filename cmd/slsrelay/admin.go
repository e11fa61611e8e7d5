package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
)

const checkConfigUsage = `usage: slsrelay check-config [-probe] FILE
Reads FILE as start-up does (every key, every value, the listeners' TLS
files), then checks what start-up needs beyond the file:
  dirs         data_dir and wal.dir are directories the relay can write in
               (or create, in the nearest directory above that exists)
  keys         the WAL key, the TLS key pairs and client CAs load; the auth
               section's users and held AccessKeys open
  certificate  each TLS listener's certificate names the host it
               advertises (or binds), which clients check it against
  ports        with -probe: every address the relay binds is free (so run
               it while the relay is stopped)
Each problem is one line, "[CHECK] message"; the exit code is 1 if any.`

// runCheckConfig is `slsrelay check-config`: LoadConfig, then the
// start-up checks of relay.Config.Probe.
func runCheckConfig(args []string, std stdio) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	probe := fs.Bool("probe", false, "also bind every listen address for a moment (ports check)")
	pos, code, ok := parseFlags(fs, args, checkConfigUsage, std)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(fs, checkConfigUsage, std, "name one configuration file")
	}
	path := pos[0]
	cfg, err := relay.LoadConfig(path)
	if err != nil {
		fmt.Fprintf(std.errOut, "[config] %v\n", err)
		return 1
	}
	findings := cfg.Probe(relay.ProbeOptions{Ports: *probe})
	for _, f := range findings {
		fmt.Fprintf(std.errOut, "[%s] %v\n", f.Check, f.Err)
	}
	if len(findings) > 0 {
		return 1
	}
	checks := []string{"config", relay.CheckDirs, relay.CheckKeys, relay.CheckCertificate}
	if *probe {
		checks = append(checks, relay.CheckPorts)
	}
	fmt.Fprintf(std.out, "%s: ok (%s)\n", path, strings.Join(checks, ", "))
	return 0
}

const walUsage = `usage: slsrelay wal status [-config FILE] [-json]
Each stream's offsets and backlog, and the disk use: from the running relay
(its control socket, or its admin listener with admin.control_socket off),
else from the WAL directory.
-json writes one JSON document (fields as in relay.WALStatus).`

// runWAL is `slsrelay wal status`.
func runWAL(args []string, std stdio) int {
	fs := flag.NewFlagSet("wal status", flag.ContinueOnError)
	configPath := fs.String("config", "configs/local.yaml", "configuration file")
	asJSON := fs.Bool("json", false, "write JSON instead of the table")
	switch {
	case len(args) > 0 && isHelpFlag(args[0]):
		writeCommandUsage(std.out, fs, walUsage)
		return 0
	case len(args) == 0:
		return usageError(fs, walUsage, std, "name a wal command: status")
	case args[0] != "status":
		return usageError(fs, walUsage, std, fmt.Sprintf("unknown wal command %q", args[0]))
	}
	pos, code, ok := parseFlags(fs, args[1:], walUsage, std)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(fs, walUsage, std, fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	if err := writeWALStatus(*configPath, *asJSON, std.out, std.errOut); err != nil {
		fmt.Fprintln(std.errOut, "slsrelay wal status:", err)
		return 1
	}
	return 0
}

// writeWALStatus writes each stream's offsets and backlog, and the disk
// use, as a table or JSON: from the running relay, asked on its control
// socket (or, with that off, on its admin listener: GET /wal/status), or
// else from the WAL directory.
func writeWALStatus(configPath string, asJSON bool, out, errOut io.Writer) error {
	cfg, err := relay.LoadConfig(configPath)
	if err != nil {
		return err
	}
	c, err := reachRelay(cfg, errOut)
	if err != nil {
		return err
	}
	if c != nil {
		live, err := c.WALStatus(context.Background(), asJSON)
		if err != nil {
			return err
		}
		if !asJSON {
			fmt.Fprintf(out, "(from the running relay, control socket %s)\n", c.Path())
		}
		_, err = io.WriteString(out, live)
		return err
	}
	w, err := relay.OpenWAL(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		if !walLocked(err) {
			return err
		}
		// A running relay holds the directory and does not answer on a
		// control socket: ask its admin listener.
		live, lerr := liveWALStatus(cfg, asJSON)
		if lerr != nil {
			return fmt.Errorf("%w (%s); the running relay's admin listener could not tell either: %w", err, noControlSocketHint(cfg), lerr)
		}
		if !asJSON {
			fmt.Fprintf(out, "(from the running relay at %s)\n", adminURL(cfg.Admin.Listen))
		}
		_, err := io.WriteString(out, live)
		return err
	}
	defer w.Close()
	if asJSON {
		return relay.WriteWALStatusJSON(out, w.Stats())
	}
	return relay.WriteWALStatus(out, w.Stats())
}

// liveWALStatus asks the running relay's admin listener; asJSON asks for
// JSON (Accept: application/json) and takes nothing else.
func liveWALStatus(cfg *relay.Config, asJSON bool) (string, error) {
	if cfg.Admin.Listen == "" {
		return "", errors.New("no admin listener configured")
	}
	req, err := http.NewRequest(http.MethodGet, adminURL(cfg.Admin.Listen)+"/wal/status", nil)
	if err != nil {
		return "", err
	}
	if asJSON {
		req.Header.Set("Accept", "application/json")
	}
	// Straight to the relay, whatever HTTP_PROXY says.
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := cl.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("admin listener answered %s: %s", resp.Status, b)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); asJSON && ct != "application/json" {
		return "", fmt.Errorf("admin listener answered %s, not JSON: a relay older than this command? stop it for -json, or leave -json out", ct)
	}
	return string(b), nil
}

// adminURL is where a client on this host reaches an admin listener bound
// to listen (a wildcard host is reached on loopback; an IPv6 zone is
// escaped).
func adminURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}).String()
}

// walLocked tells whether opening the WAL failed because another process
// (the running relay) holds its directory: badger's lock.
func walLocked(err error) bool {
	return errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "Cannot acquire directory lock")
}
