package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestVersionStamp builds slsrelay with the -ldflags the Makefile's build
// target uses (read from `make -n build`, with VERSION, COMMIT and DATE
// given) and runs the binary: version prints what was stamped, and the
// real process exits with the codes the command line promises.
func TestVersionStamp(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dry, err := exec.CommandContext(ctx, "make", "-s", "-n", "-C", "../..", "build",
		"VERSION=v9.8.7-test", "COMMIT=0123abcd", "DATE=2026-01-02T03:04:05Z").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, dry)
	}
	m := regexp.MustCompile(`-ldflags "([^"]*)"`).FindSubmatch(dry)
	if m == nil {
		t.Fatalf("make -n build has no -ldflags:\n%s", dry)
	}
	ldflags := string(m[1])
	for _, v := range []string{"main.version=v9.8.7-test", "main.commit=0123abcd", "main.date=2026-01-02T03:04:05Z"} {
		if !strings.Contains(ldflags, "-X "+v) {
			t.Fatalf("the Makefile's ldflags %q do not stamp %s", ldflags, v)
		}
	}
	bin := filepath.Join(t.TempDir(), "slsrelay")
	if out, err := exec.CommandContext(ctx, "go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags %q: %v\n%s", ldflags, err, out)
	}
	f := func(wantCode int, wantOut, wantErr string, args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = t.TempDir() // a relay started by mistake would create ./data here
		cmd.Stdout, cmd.Stderr = &out, &errOut
		code := 0
		if err := cmd.Run(); err != nil {
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("%s: %v", args, err)
			}
			code = exit.ExitCode()
		}
		if code != wantCode || !strings.Contains(out.String(), wantOut) || !strings.Contains(errOut.String(), wantErr) {
			t.Errorf("slsrelay %s: exit %d, stdout %q, stderr %q; want %d, %q, %q",
				strings.Join(args, " "), code, out.String(), errOut.String(), wantCode, wantOut, wantErr)
		}
	}
	f(0, "slsrelay v9.8.7-test (commit 0123abcd, built 2026-01-02T03:04:05Z)\n", "", "version")
	f(2, "", "usage: slsrelay COMMAND", "help")
	f(2, "", `unknown command "status"`, "status")
	f(2, "", "usage: slsrelay COMMAND")
	f(0, "usage: slsrelay wal status", "", "wal", "status", "--help")
	f(0, "usage: slsrelay check-config", "", "check-config", "--help")
	f(2, "", `cannot read config "configs/local.yaml"`, "-config", "configs/local.yaml")
}

// TestVersionUnstamped: without stamps (a test binary has no module
// version nor VCS information), version says devel and unknown.
func TestVersionUnstamped(t *testing.T) {
	if s := currentStamp(); s.Version != "devel" || s.Commit != "unknown" || s.Date != "unknown" {
		t.Fatalf("unstamped: %+v", s)
	}
	version, commit, date = "v1.0.0", "abc", "2026-12-03T00:00:00Z"
	t.Cleanup(func() { version, commit, date = "", "", "" })
	if got, want := currentStamp().String(), "slsrelay v1.0.0 (commit abc, built 2026-12-03T00:00:00Z)"; got != want {
		t.Fatalf("stamped: %q, want %q", got, want)
	}
}
