package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/engine/users"
	"github.com/slsrelay/slsrelay/wal"
)

// TestUserCommand drives `slsrelay user` as an operator would: define a
// held key (sealed with the WAL key), add users with passwords from stdin,
// list, remove; the file then loads, checks the passwords and holds no
// secret in the clear.
func TestUserCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.yaml")
	walKeyFile := filepath.Join(dir, "wal.key")
	walKey := strings.Repeat("ab", 32)
	if err := os.WriteFile(walKeyFile, []byte(walKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (string, int) {
		var out, errs bytes.Buffer
		code := runUser(args, strings.NewReader(stdin), &out, &errs)
		return out.String() + errs.String(), code
	}
	f := func(stdin string, wantCode int, args ...string) string {
		t.Helper()
		out, code := run(stdin, args...)
		if code != wantCode {
			t.Fatalf("user %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
		}
		return out
	}
	f("the-held-secret\n", 0, "key", "-file", file, "-akid", "LTAIheld", "-seal", "-wal-key-file", walKeyFile, "prod")
	f("pw-web-01\n", 0, "add", "-file", file, "-project", "p1", "-key", "prod", "-topics", "nginx,app-*", "web-01")
	f("pw-web-02", 0, "add", "-file", file, "-project", "p1", "-key", "prod", "-topics", "*", "-mechanisms", "SCRAM-SHA-512", "web-02")
	f("", 0, "add", "-file", file, "-project", "p2", "-key", "prod", "-topics", "x", "-no-password", "-cert-subject", "CN=host", "cert-host")
	f("", 1, "add", "-file", file, "-project", "p1", "-key", "prod", "-topics", "x", "no-password-given")
	f("pw", 2, "add", "-file", file, "-project", "p1", "-key", "prod", "-topics", "x")
	f("pw", 1, "add", "-file", file, "-project", "p1", "-key", "prod", "-topics", "a*b", "bad-topics")
	list := f("", 0, "list", "-file", file)
	for _, want := range []string{"web-01", "nginx,app-*", "SCRAM-SHA-256,SCRAM-SHA-512", "web-02", "cert CN=host"} {
		if !strings.Contains(list, want) {
			t.Fatalf("list lacks %q:\n%s", want, list)
		}
	}
	raw, _ := os.ReadFile(file)
	for _, secret := range []string{"the-held-secret", "pw-web-01", "pw-web-02", walKey} {
		if strings.Contains(string(raw)+list, secret) {
			t.Fatalf("the users file or the listing holds a secret in the clear:\n%s", raw)
		}
	}

	key, _ := os.ReadFile(walKeyFile)
	walKeyBytes, err := wal.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	d, err := users.Open(users.Options{Path: file, EncryptionKey: walKeyBytes})
	if err != nil {
		t.Fatal(err)
	}
	u, ok := d.User("web-01")
	if !ok || u.Principal.Credential.AccessKeySecret != "the-held-secret" || u.Principal.Project != "p1" {
		t.Fatal("web-01 does not map to the held key and project")
	}
	if !u.SCRAM[engine.SCRAMSHA256].MatchesPassword(engine.SCRAMSHA256, "pw-web-01") {
		t.Fatal("web-01's password does not match")
	}
	if u2, _ := d.User("web-02"); len(u2.SCRAM) != 1 || !u2.SCRAM[engine.SCRAMSHA512].MatchesPassword(engine.SCRAMSHA512, "pw-web-02") {
		t.Fatal("web-02 (stdin without a newline, SHA-512 only) is wrong")
	}

	f("", 0, "remove", "-file", file, "web-01")
	f("", 1, "remove", "-file", file, "web-01")
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.User("web-01"); ok {
		t.Fatal("web-01 survived its removal")
	}
}
