package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/wal"
)

const dlqUsage = `usage: slsrelay dlq list [-config FILE] [-json] [SELECTION]
       slsrelay dlq replay|drop [-config FILE] SELECTION
       slsrelay dlq replay [-config FILE] -key-env NAME | -key-file PATH SELECTION
SELECTION: ids and ranges (7 9-12), or -all; -stream PROJECT/LOGSTORE[/PARTITION]
and -access-key-id AKID narrow it, or alone select every dead letter they match.
  list     the dead letters: id, stream, records, when, AccessKey ID, why
  replay   put them back into their stream (delivery tries again); with
           -key-env or -key-file they carry another AccessKey, read as
           AKID#AKSECRET from that environment variable or file (- for
           stdin; never given on the command line, never printed)
  drop     delete them for good
A running relay is asked on its control socket (admin.control_socket,
default <data_dir>/control.sock; run the command as the relay's user): it
replays through its own WAL while it delivers. With the relay stopped the
WAL is opened directly; a socket left by a relay that crashed is ignored.`

// runDLQCommand is `slsrelay dlq`: the words and flags; runDLQ acts.
func runDLQCommand(args []string, std stdio) int {
	verb := ""
	if len(args) > 0 {
		verb = args[0]
	}
	fs := flag.NewFlagSet("dlq "+verb, flag.ContinueOnError)
	configPath := fs.String("config", "configs/local.yaml", "configuration file")
	all := fs.Bool("all", false, "every dead letter")
	asJSON := fs.Bool("json", false, "list: write JSON instead of the table")
	stream := fs.String("stream", "", "only dead letters of PROJECT/LOGSTORE[/PARTITION]")
	akid := fs.String("access-key-id", "", "only dead letters sent with this AccessKey ID")
	keyEnv := fs.String("key-env", "", "replay: environment variable holding AKID#AKSECRET")
	keyFile := fs.String("key-file", "", "replay: file holding AKID#AKSECRET (-: standard input)")
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
	req := dlqRequest{verb: verb, configPath: *configPath, all: *all, asJSON: *asJSON, stream: *stream, accessKeyID: *akid,
		keyEnv: *keyEnv, keyFile: *keyFile, args: pos}
	if err := runDLQ(req, std); err != nil {
		fmt.Fprintln(std.errOut, "slsrelay dlq:", err)
		return 1
	}
	return 0
}

// dlqRequest is one `slsrelay dlq` command line.
type dlqRequest struct {
	verb, configPath string
	all, asJSON      bool
	stream           string // -stream
	accessKeyID      string // -access-key-id
	keyEnv, keyFile  string
	args             []string // ids and ranges
}

// runDLQ lists, replays or drops dead letters: the running relay's, on its
// control socket, or else those of the WAL opened here.
func runDLQ(req dlqRequest, std stdio) error {
	var key *wal.Credential
	switch {
	case req.keyEnv != "" || req.keyFile != "":
		if req.verb != "replay" {
			return errors.New("-key-env and -key-file go with replay only")
		}
		k, err := readReplayKey(req.keyEnv, req.keyFile, std.in)
		if err != nil {
			return err
		}
		key = &k
	case req.asJSON && req.verb != "list":
		return errors.New("-json goes with list only")
	}
	sel, err := relay.ParseDeadLetterSelection(req.args, req.all)
	if err != nil {
		return err
	}
	sel.Stream, sel.AccessKeyID = req.stream, req.accessKeyID
	if err := sel.Check(); err != nil {
		return err
	}
	if req.verb != "list" && sel.Empty() {
		return fmt.Errorf("name the dead letters to %s, or -all", req.verb)
	}
	cfg, err := relay.LoadConfig(req.configPath)
	if err != nil {
		return err
	}
	dl, closeDL, err := openDeadLetters(cfg, std.errOut)
	if err != nil {
		return err
	}
	defer closeDL()
	ctx := context.Background()
	switch req.verb {
	case "list":
		list, err := dl.DeadLetters(ctx)
		if err != nil {
			return err
		}
		list = slices.DeleteFunc(list, func(d relay.DeadLetterInfo) bool { return !sel.Matches(d) })
		return writeDeadLetters(std.out, list, req.asJSON)
	case "replay":
		return dl.Replay(ctx, sel, key, func(id uint64, off int64) {
			if key != nil {
				fmt.Fprintf(std.out, "replayed %d at offset %d with AccessKey %s\n", id, off, key.AccessKeyID)
				return
			}
			fmt.Fprintf(std.out, "replayed %d at offset %d\n", id, off)
		})
	default:
		return dl.Drop(ctx, sel, func(id uint64) { fmt.Fprintf(std.out, "dropped %d\n", id) })
	}
}

// writeDeadLetters writes `dlq list`: a table (KEY is the AccessKey ID the
// entries were sent with), or JSON ([]DeadLetterInfo).
func writeDeadLetters(out io.Writer, list []relay.DeadLetterInfo, asJSON bool) error {
	if asJSON {
		if list == nil {
			list = []relay.DeadLetterInfo{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTREAM\tRECORDS\tAT\tKEY\tREASON")
	for _, d := range list {
		fmt.Fprintf(tw, "%d\t%s/%s/%d\t%d\t%s\t%s\t%s\n", d.ID, d.Project, d.Logstore, d.Partition, d.Records, d.At.Format(time.RFC3339),
			d.AccessKeyID, d.Reason)
	}
	return tw.Flush()
}

// openDeadLetters reaches the dead letters: the running relay's on its
// control socket, or else the WAL's, opened here (and closed by the
// function returned).
func openDeadLetters(cfg *relay.Config, errOut io.Writer) (relay.DeadLetterAdmin, func(), error) {
	c, err := reachRelay(cfg, errOut)
	if err != nil {
		return nil, nil, err
	}
	if c != nil {
		return c, func() {}, nil
	}
	w, err := openWAL(cfg)
	if err != nil {
		return nil, nil, err
	}
	return relay.WALDeadLetters{WAL: w}, func() { w.Close() }, nil
}

// reachRelay returns a client of the relay answering on cfg's control
// socket, or nil when none answers: no socket (the relay is stopped, or
// the socket is off), or a stale one, which a relay that crashed left and
// which is said on errOut. Any other failure (permission denied: another
// user) is an error.
func reachRelay(cfg *relay.Config, errOut io.Writer) (*relay.ControlClient, error) {
	path := cfg.ControlSocket()
	if path == "" {
		return nil, nil
	}
	c, err := relay.DialControl(path)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, relay.ErrNoRelay):
		return nil, nil
	case errors.Is(err, relay.ErrStaleSocket):
		fmt.Fprintf(errOut, "slsrelay: no relay answers on the control socket %q (left by a relay that did not stop cleanly): using the WAL directly\n", path)
		return nil, nil
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("%w: run the command as the relay's user", err)
	}
	return nil, err
}

// openWAL opens the WAL cfg names, for commands run while the relay is
// stopped (badger locks its directory).
func openWAL(cfg *relay.Config) (*wal.WAL, error) {
	w, err := relay.OpenWAL(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil && walLocked(err) {
		return nil, fmt.Errorf("%w (%s)", err, noControlSocketHint(cfg))
	}
	return w, err
}

// noControlSocketHint says why a relay that holds the WAL did not answer
// on cfg's control socket, and what to do.
func noControlSocketHint(cfg *relay.Config) string {
	path := cfg.ControlSocket()
	if path == "" {
		return "the relay is running with admin.control_socket off: stop it first, or set admin.control_socket to a socket path and restart it"
	}
	if err := cfg.ControlSocketUnbindable(); err != nil {
		return fmt.Sprintf("the relay is running without a control socket: the default %q is %d bytes, too long for a Unix socket: stop it first, or set admin.control_socket to a shorter path and restart it", path, len(path))
	}
	return fmt.Sprintf("a relay holds the WAL but does not answer on its control socket %q yet: is it still starting?", path)
}

// openWALOffline opens the WAL of the config at configPath, as openWAL.
func openWALOffline(configPath string) (*wal.WAL, error) {
	cfg, err := relay.LoadConfig(configPath)
	if err != nil {
		return nil, err
	}
	return openWAL(cfg)
}

// readReplayKey reads the AccessKey `dlq replay` gives the dead letters,
// AKID#AKSECRET as in a producer's SASL password, from the environment
// variable env or the file path (one of them; "-" is stdin, for
// `kubectl exec -i`). The secret never appears on the command line (where
// ps shows it) nor in any message.
func readReplayKey(env, path string, stdin io.Reader) (wal.Credential, error) {
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
	case path == "-":
		if stdin == nil {
			return wal.Credential{}, errors.New("-key-file -: no standard input")
		}
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return wal.Credential{}, fmt.Errorf("-key-file -: %w", err)
		}
		raw, from = string(b), "standard input"
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
