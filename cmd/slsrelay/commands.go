package main

// The command line: one table of words. The daemon starts only as
// `slsrelay run` or as `slsrelay -config FILE` (flags and no word: how
// `make run`, the systemd unit, the Dockerfile and the Kubernetes
// manifests start it). Any other word runs its command; an unknown word,
// `help` or nothing at all prints the usage and exits 2; -h/--help after
// any word prints that command's usage on stdout and exits 0.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// stdio is where a command reads and writes.
type stdio struct {
	in          io.Reader
	out, errOut io.Writer
}

// command is one word of the table.
type command struct {
	name    string
	summary string
	run     func(args []string, std stdio) int
}

// commands is the table, in the order the usage lists it. It is filled in
// init, as help's entry prints the table.
var commands []command

func init() {
	commands = []command{
		{"run", "run the relay (also: slsrelay -config FILE)", runDaemon},
		{"check-config", "check a configuration and what start-up needs (dirs, keys, certificates, -probe: ports)", runCheckConfig},
		{"wal", "wal status: streams, offsets, backlog, disk (-json)", runWAL},
		{"dlq", "list, replay or drop dead letters (on the running relay too)", runDLQCommand},
		{"user", "add, remove or list relay users; define held AccessKeys", func(args []string, std stdio) int {
			return runUser(args, std.in, std.out, std.errOut)
		}},
		{"clients", "the shippers connected to a running relay (-json)", func(args []string, std stdio) int {
			return clientsCommand(args, std.out, std.errOut)
		}},
		{"version", "version, commit and build date", runVersion},
		{"help", "this text", func(_ []string, std stdio) int {
			writeUsage(std.errOut)
			return 2
		}},
	}
}

// writeUsage writes the top-level usage: the table.
func writeUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: slsrelay COMMAND [flags] [arguments]")
	fmt.Fprintln(w, "       slsrelay -config FILE    (the same as slsrelay run -config FILE)")
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "`slsrelay COMMAND -h` shows a command's flags.")
}

// runCLI runs the command line args (without the program name) and
// returns the exit code.
func runCLI(args []string, in io.Reader, out, errOut io.Writer) int {
	std := stdio{in, out, errOut}
	switch {
	case len(args) == 0:
		writeUsage(errOut)
		return 2
	case isHelpFlag(args[0]):
		writeUsage(out)
		return 0
	case strings.HasPrefix(args[0], "-"):
		// Flags and no word: the daemon, as deployments start it.
		return runDaemon(args, std)
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], std)
		}
	}
	fmt.Fprintf(errOut, "slsrelay: unknown command %q\n", args[0])
	writeUsage(errOut)
	return 2
}

// runAdmin runs args unless they start the daemon (handled false); the
// tests drive every other command through it.
func runAdmin(args []string, out, errOut io.Writer) (handled bool, code int) {
	if len(args) > 0 && (args[0] == "run" || strings.HasPrefix(args[0], "-") && !isHelpFlag(args[0])) {
		return false, 0
	}
	return true, runCLI(args, os.Stdin, out, errOut)
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

// parseFlags parses args with fs, flags and positional arguments in any
// order ("--" ends the flags), and returns the positional ones. usage is
// the command's synopsis; the flags' defaults follow it. On -h/--help it
// writes the usage on stdout and returns code 0 and ok false; on a bad
// flag, the error and the usage on stderr, code 2.
func parseFlags(fs *flag.FlagSet, args []string, usage string, std stdio) (pos []string, code int, ok bool) {
	fs.SetOutput(std.errOut)
	fs.Usage = func() {}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				writeCommandUsage(std.out, fs, usage)
				return nil, 0, false
			}
			// fs printed the error already.
			writeCommandUsage(std.errOut, fs, usage)
			return nil, 2, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// usageError writes msg and the command's usage on stderr: exit 2.
func usageError(fs *flag.FlagSet, usage string, std stdio, msg string) int {
	fmt.Fprintf(std.errOut, "slsrelay %s: %s\n", fs.Name(), msg)
	writeCommandUsage(std.errOut, fs, usage)
	return 2
}

func writeCommandUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprintln(w, strings.TrimRight(usage, "\n"))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "flags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}
