package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/wal"
)

// version is set at build time (-ldflags "-X main.version=…"); otherwise
// the module's build info tells.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// runAdmin runs a subcommand; it reports whether args named one.
func runAdmin(args []string, stdout, stderr io.Writer) (handled bool, code int) {
	if len(args) == 0 {
		return false, 0
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "slsrelay", versionString())
		return true, 0
	case "check-config":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: slsrelay check-config FILE")
			return true, 2
		}
		if _, err := relay.LoadConfig(args[1]); err != nil {
			fmt.Fprintln(stderr, err)
			return true, 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", args[1])
		return true, 0
	case "wal":
		if len(args) < 2 || args[1] != "status" {
			fmt.Fprintln(stderr, "usage: slsrelay wal status [-config FILE]")
			return true, 2
		}
		if err := runWALStatus(args[2:], stdout); err != nil {
			fmt.Fprintln(stderr, "slsrelay wal status:", err)
			return true, 1
		}
		return true, 0
	case "dlq":
		if err := runDLQ(args[1:], stdout); err != nil {
			fmt.Fprintln(stderr, "slsrelay dlq:", err)
			return true, 1
		}
		return true, 0
	}
	return false, 0
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

func runDLQ(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(dlqUsage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("dlq "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "configs/local.yaml", "configuration file")
	all := fs.Bool("all", false, "every dead letter")
	keyEnv := fs.String("key-env", "", "replay: environment variable holding AKID#AKSECRET")
	keyFile := fs.String("key-file", "", "replay: file holding AKID#AKSECRET")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w\n%s", err, dlqUsage)
	}
	var newKey *wal.Credential
	if *keyEnv != "" || *keyFile != "" {
		if verb != "replay" {
			return fmt.Errorf("-key-env and -key-file go with replay only\n%s", dlqUsage)
		}
		k, err := readReplayKey(*keyEnv, *keyFile)
		if err != nil {
			return err
		}
		newKey = &k
	}
	var ids []uint64
	for _, a := range fs.Args() {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return fmt.Errorf("dead letter id %q is not a number", a)
		}
		ids = append(ids, id)
	}
	switch verb {
	case "list":
	case "replay", "drop":
		if len(ids) == 0 && !*all {
			return fmt.Errorf("name the dead letters to %s, or -all", verb)
		}
	default:
		return fmt.Errorf("unknown dlq command %q\n%s", verb, dlqUsage)
	}
	w, err := openWALOffline(*configPath)
	if err != nil {
		return err
	}
	defer w.Close()
	if verb == "list" || *all {
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

// runWALStatus prints each stream's offsets and backlog, and the disk use:
// from the WAL directory when the relay is stopped, or else from the
// running relay's admin listener (GET /wal/status).
func runWALStatus(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("wal status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "configs/local.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := relay.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	w, err := relay.OpenWAL(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		if !walLocked(err) {
			return err
		}
		// The running relay holds the directory: ask it.
		live, lerr := liveWALStatus(cfg)
		if lerr != nil {
			return fmt.Errorf("%w; the running relay's admin listener could not tell either: %w", err, lerr)
		}
		fmt.Fprintf(out, "(from the running relay at %s)\n", adminURL(cfg.Admin.Listen))
		_, err := io.WriteString(out, live)
		return err
	}
	defer w.Close()
	return relay.WriteWALStatus(out, w.Stats())
}

// liveWALStatus asks the running relay's admin listener.
func liveWALStatus(cfg *relay.Config) (string, error) {
	if cfg.Admin.Listen == "" {
		return "", errors.New("no admin listener configured")
	}
	// Straight to the relay, whatever HTTP_PROXY says.
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := cl.Get(adminURL(cfg.Admin.Listen) + "/wal/status")
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
