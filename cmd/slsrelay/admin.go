package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/wal"
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
Each stream's offsets and backlog, and the disk use: from the WAL directory
when the relay is stopped, else from the running relay's admin listener.
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
	if err := writeWALStatus(*configPath, *asJSON, std.out); err != nil {
		fmt.Fprintln(std.errOut, "slsrelay wal status:", err)
		return 1
	}
	return 0
}

const dlqUsage = `usage: slsrelay dlq list|replay|drop [-config FILE] [ID ... | -all]
       slsrelay dlq replay [-config FILE] -key-env NAME | -key-file PATH [ID ... | -all]
  list     the dead letters: id, stream, records, when, why
  replay   put them back into their stream (delivery tries again); with
           -key-env or -key-file they carry another AccessKey, read as
           AKID#AKSECRET from that environment variable or file (never
           given on the command line, never printed)
  drop     delete them for good
The relay must be stopped: the WAL is opened directly`

// runDLQCommand is `slsrelay dlq`: the words and flags; runDLQ acts.
func runDLQCommand(args []string, std stdio) int {
	verb := ""
	if len(args) > 0 {
		verb = args[0]
	}
	fs := flag.NewFlagSet("dlq "+verb, flag.ContinueOnError)
	configPath := fs.String("config", "configs/local.yaml", "configuration file")
	all := fs.Bool("all", false, "every dead letter")
	keyEnv := fs.String("key-env", "", "replay: environment variable holding AKID#AKSECRET")
	keyFile := fs.String("key-file", "", "replay: file holding AKID#AKSECRET")
	switch verb {
	case "list", "replay", "drop":
	case "-h", "-help", "--help":
		writeCommandUsage(std.out, fs, dlqUsage)
		return 0
	case "":
		return usageError(fs, dlqUsage, std, "name a dlq command: list, replay or drop")
	default:
		return usageError(fs, dlqUsage, std, fmt.Sprintf("unknown dlq command %q", verb))
	}
	pos, code, ok := parseFlags(fs, args[1:], dlqUsage, std)
	if !ok {
		return code
	}
	if err := runDLQ(verb, *configPath, *all, *keyEnv, *keyFile, pos, std.out); err != nil {
		fmt.Fprintln(std.errOut, "slsrelay dlq:", err)
		return 1
	}
	return 0
}

// runDLQ lists, replays or drops the dead letters named by args (ids) or
// all; keyEnv or keyFile give replayed ones another AccessKey.
func runDLQ(verb, configPath string, all bool, keyEnv, keyFile string, args []string, out io.Writer) error {
	var newKey *wal.Credential
	if keyEnv != "" || keyFile != "" {
		if verb != "replay" {
			return errors.New("-key-env and -key-file go with replay only")
		}
		k, err := readReplayKey(keyEnv, keyFile)
		if err != nil {
			return err
		}
		newKey = &k
	}
	var ids []uint64
	for _, a := range args {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return fmt.Errorf("dead letter id %q is not a number", a)
		}
		ids = append(ids, id)
	}
	if verb != "list" && len(ids) == 0 && !all {
		return fmt.Errorf("name the dead letters to %s, or -all", verb)
	}
	w, err := openWALOffline(configPath)
	if err != nil {
		return err
	}
	defer w.Close()
	if verb == "list" || all {
		var listed []*wal.DeadLetter
		for d, err := range w.DeadLetters() {
			if err != nil {
				return err
			}
			listed = append(listed, d)
		}
		if verb == "list" {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTREAM\tRECORDS\tAT\tREASON")
			for _, d := range listed {
				fmt.Fprintf(tw, "%d\t%s/%s/%d\t%d\t%s\t%s\n", d.ID, d.Stream.Project, d.Stream.Logstore, d.Stream.Partition,
					d.Entry.Records, d.At.Format(time.RFC3339), d.Reason)
			}
			return tw.Flush()
		}
		for _, d := range listed {
			ids = append(ids, d.ID)
		}
	}
	for _, id := range ids {
		if verb == "replay" {
			var off int64
			var err error
			if newKey != nil {
				off, err = w.ReplayWith(id, *newKey)
			} else {
				off, err = w.Replay(id)
			}
			if err != nil {
				return fmt.Errorf("cannot replay dead letter %d: %w", id, err)
			}
			if newKey != nil {
				fmt.Fprintf(out, "replayed %d at offset %d with AccessKey %s\n", id, off, newKey.AccessKeyID)
			} else {
				fmt.Fprintf(out, "replayed %d at offset %d\n", id, off)
			}
			continue
		}
		if err := w.Drop(id); err != nil {
			return fmt.Errorf("cannot drop dead letter %d: %w", id, err)
		}
		fmt.Fprintf(out, "dropped %d\n", id)
	}
	return nil
}

// readReplayKey reads the AccessKey `dlq replay` gives the dead letters,
// AKID#AKSECRET as in a producer's SASL password, from the environment
// variable env or the file path (one of them). The secret never appears on
// the command line (where ps shows it) nor in any message.
func readReplayKey(env, path string) (wal.Credential, error) {
	var raw, from string
	switch {
	case env != "" && path != "":
		return wal.Credential{}, errors.New("give -key-env or -key-file, not both")
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return wal.Credential{}, fmt.Errorf("-key-env: environment variable %s is not set", env)
		}
		raw, from = v, "environment variable "+env
	default:
		b, err := os.ReadFile(path)
		if err != nil {
			return wal.Credential{}, fmt.Errorf("-key-file: %w", err)
		}
		raw, from = string(b), "file "+path
	}
	id, secret, ok := strings.Cut(strings.TrimSpace(raw), "#")
	if !ok || id == "" || secret == "" || strings.ContainsAny(id, " \t\r\n") || strings.ContainsAny(secret, " \t\r\n") {
		return wal.Credential{}, fmt.Errorf("%s does not hold one AKID#AKSECRET", from)
	}
	return wal.Credential{AccessKeyID: id, AccessKeySecret: secret}, nil
}

// writeWALStatus writes each stream's offsets and backlog, and the disk
// use, as a table or JSON: from the WAL directory when the relay is
// stopped, or else from the running relay's admin listener (GET
// /wal/status).
func writeWALStatus(configPath string, asJSON bool, out io.Writer) error {
	cfg, err := relay.LoadConfig(configPath)
	if err != nil {
		return err
	}
	w, err := relay.OpenWAL(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		if !walLocked(err) {
			return err
		}
		// The running relay holds the directory: ask it.
		live, lerr := liveWALStatus(cfg, asJSON)
		if lerr != nil {
			return fmt.Errorf("%w; the running relay's admin listener could not tell either: %w", err, lerr)
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
		return "", fmt.Errorf("admin listener answered %s, not JSON: stop the relay for -json, or leave -json out", ct)
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

// openWALOffline opens the WAL the config names, for admin commands run
// while the relay is stopped (badger locks its directory).
func openWALOffline(configPath string) (*wal.WAL, error) {
	cfg, err := relay.LoadConfig(configPath)
	if err != nil {
		return nil, err
	}
	w, err := relay.OpenWAL(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil && walLocked(err) {
		return nil, fmt.Errorf("%w (is the relay still running? stop it first)", err)
	}
	return w, err
}
