package main

import (
	"flag"
	"fmt"
	"runtime/debug"
)

// The Makefile's build stamps these (-ldflags "-X main.version=… -X
// main.commit=… -X main.date=…"); the Dockerfile stamps version. What is
// not stamped comes from the build info Go records (the module version,
// and vcs.revision / vcs.time when built in a git checkout), else "devel"
// and "unknown".
var version, commit, date string

// buildStamp is what `slsrelay version` prints.
type buildStamp struct{ Version, Commit, Date string }

func currentStamp() buildStamp {
	s := buildStamp{version, commit, date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if s.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			s.Version = bi.Main.Version
		}
		dirty := false
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				if s.Commit == "" {
					s.Commit = kv.Value
				}
			case "vcs.time":
				if s.Date == "" {
					s.Date = kv.Value
				}
			case "vcs.modified":
				dirty = kv.Value == "true"
			}
		}
		if dirty && commit == "" && s.Commit != "" {
			s.Commit += "-dirty"
		}
	}
	if s.Version == "" {
		s.Version = "devel"
	}
	if s.Commit == "" {
		s.Commit = "unknown"
	}
	if s.Date == "" {
		s.Date = "unknown"
	}
	return s
}

func (s buildStamp) String() string {
	return fmt.Sprintf("slsrelay %s (commit %s, built %s)", s.Version, s.Commit, s.Date)
}

const versionUsage = `usage: slsrelay version
Prints the version, the commit and the build date.`

func runVersion(args []string, std stdio) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	pos, code, ok := parseFlags(fs, args, versionUsage, std)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(fs, versionUsage, std, fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	fmt.Fprintln(std.out, currentStamp())
	return 0
}
