package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandLine drives every word of the table and -h/--help after each:
// help goes to stdout with exit 0, usage errors to stderr with exit 2, and
// no word but run (or flags alone) starts the daemon. It runs in an empty
// directory with configs/local.yaml copied in, so a relay started by
// mistake would find its config, create ./data and hold the test.
func TestCommandLine(t *testing.T) {
	local, err := os.ReadFile("../../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "configs", "local.yaml"), local, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

	type want struct {
		code        int
		out, errOut string // substrings; "" wants that stream empty
	}
	f := func(w want, args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := runCLI(args, strings.NewReader(""), &out, &errOut)
		ok := code == w.code &&
			(w.out == "") == (out.Len() == 0) && strings.Contains(out.String(), w.out) &&
			(w.errOut == "") == (errOut.Len() == 0) && strings.Contains(errOut.String(), w.errOut)
		if !ok {
			t.Errorf("slsrelay %s: exit %d, stdout %q, stderr %q; want %d, %q, %q",
				strings.Join(args, " "), code, out.String(), errOut.String(), w.code, w.out, w.errOut)
		}
	}
	usage := "usage: slsrelay COMMAND"
	// Nothing, help and unknown words: the usage, exit 2.
	f(want{2, "", usage})
	f(want{2, "", usage}, "help")
	f(want{2, "", `unknown command "status"`}, "status")
	f(want{2, "", usage}, "status")
	f(want{2, "", `unknown command "serve"`}, "serve", "-config", "configs/local.yaml")
	// The top level's -h.
	for _, h := range []string{"-h", "-help", "--help"} {
		f(want{0, usage, ""}, h)
	}
	// Each command's -h and --help: its usage on stdout, exit 0.
	for _, h := range []string{"-h", "--help"} {
		f(want{0, "usage: slsrelay run", ""}, "run", h)
		f(want{0, "usage: slsrelay run", ""}, "-config", "configs/local.yaml", h)
		f(want{0, "usage: slsrelay check-config", ""}, "check-config", h)
		f(want{0, "-probe", ""}, "check-config", "configs/local.yaml", h)
		f(want{0, "usage: slsrelay wal status", ""}, "wal", h)
		f(want{0, "-json", ""}, "wal", "status", h)
		f(want{0, "usage: slsrelay dlq", ""}, "dlq", h)
		f(want{0, "-key-file", ""}, "dlq", "replay", h)
		f(want{0, "-all", ""}, "dlq", "list", h)
		f(want{0, "usage: slsrelay user", ""}, "user", h)
		f(want{0, "-project", ""}, "user", "add", h)
		f(want{0, "-file", ""}, "user", "list", h)
		f(want{0, "usage: slsrelay version", ""}, "version", h)
		f(want{0, "usage: slsrelay clients", ""}, "clients", h)
	}
	// Usage errors: stderr, exit 2.
	f(want{2, "", "flag provided but not defined: -bogus"}, "-bogus")
	f(want{2, "", `unexpected argument "extra"`}, "run", "extra")
	f(want{2, "", "name one configuration file"}, "check-config")
	f(want{2, "", "name one configuration file"}, "check-config", "a.yaml", "b.yaml")
	f(want{2, "", "flag provided but not defined: -frob"}, "check-config", "-frob", "a.yaml")
	f(want{2, "", "name a wal command: status"}, "wal")
	f(want{2, "", `unknown wal command "stats"`}, "wal", "stats")
	f(want{2, "", `unexpected argument "x"`}, "wal", "status", "x")
	f(want{2, "", "name a dlq command"}, "dlq")
	f(want{2, "", `unknown dlq command "show"`}, "dlq", "show")
	f(want{2, "", "usage: slsrelay user"}, "user")
	f(want{2, "", "usage: slsrelay user"}, "user", "show")
	f(want{2, "", `unexpected argument "x"`}, "version", "x")
	f(want{2, "", `unexpected argument "x"`}, "clients", "x")
	f(want{2, "", "flag provided but not defined: -frob"}, "clients", "-frob")
	// What the commands do.
	f(want{0, "slsrelay devel (commit ", ""}, "version")
	f(want{1, "", `[config] cannot read config "missing.yaml"`}, "check-config", "missing.yaml")
	f(want{0, "configs/local.yaml: ok (config, dirs, keys, certificate)", ""}, "check-config", "configs/local.yaml")
	// Flags after the file are flags too.
	f(want{0, "usage: slsrelay check-config", ""}, "check-config", "configs/local.yaml", "--help")

	if _, err := os.Stat("data"); !os.IsNotExist(err) {
		t.Fatalf("a command created ./data (a relay ran): %v", err)
	}
}

// TestDaemonWords: `run` and flags without a word start the daemon (it
// reads its config and gets as far as start-up: here a data_dir it cannot
// create), and nothing else does.
func TestDaemonWords(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "relay.yaml")
	body := "data_dir: " + filepath.Join(file, "data") + "\nlisteners: [{protocol: PLAINTEXT, bind: '127.0.0.1:0'}]\nsls: {endpoint: x}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	f := func(wantCode int, wantErr string, args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := runCLI(args, strings.NewReader(""), &out, &errOut)
		if code != wantCode || !strings.Contains(errOut.String(), wantErr) {
			t.Errorf("slsrelay %s: exit %d, stderr %q; want %d, %q", strings.Join(args, " "), code, errOut.String(), wantCode, wantErr)
		}
	}
	f(1, "cannot create data_dir", "-config", cfg)
	f(1, "cannot create data_dir", "run", "-config", cfg)
	f(2, `cannot read config "`+filepath.Join(dir, "missing.yaml"), "run", "-config", filepath.Join(dir, "missing.yaml"))
	f(2, `cannot read config "`+filepath.Join(dir, "missing.yaml"), "-config", filepath.Join(dir, "missing.yaml"))
	// check-config sees the same data_dir problem without starting.
	f(1, "[dirs] data_dir", "check-config", cfg)
}
