package users

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/wal"
)

const (
	testAKID   = "LTAItestheldkey"
	testSecret = "held-secret-never-logged"
	testWALKey = "0123456789abcdef0123456789abcdef"
)

// env is a fake environment.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// writeUsers adds users to a new users file with a held key from the
// environment and returns its path.
func writeUsers(t *testing.T, add func(f *File)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.yaml")
	f := &File{Keys: map[string]HeldKey{"prod": {AccessKeyID: testAKID, SecretEnv: "HELD_SECRET"}}}
	add(f)
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDirectoryLoadAndLookup(t *testing.T) {
	path := writeUsers(t, func(f *File) {
		if err := f.Add("web-01", "pw-web-01", AddOptions{Project: "p1", Key: "prod", Topics: []string{"nginx", "app-*"}}); err != nil {
			t.Fatal(err)
		}
		if err := f.Add("cert-host", "", AddOptions{Project: "p2", Key: "prod", Topics: []string{"*"}, CertSubject: "CN=cert-host,O=Example", CertSAN: []string{"spiffe://example/host"}}); err != nil {
			t.Fatal(err)
		}
	})
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "pw-web-01") || strings.Contains(string(b), testSecret) {
		t.Fatalf("the users file holds a secret:\n%s", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("users file mode %v", st.Mode())
	}
	d, err := Open(Options{Path: path, LookupEnv: env(map[string]string{"HELD_SECRET": testSecret})})
	if err != nil {
		t.Fatal(err)
	}
	u, ok := d.User("web-01")
	if !ok {
		t.Fatal("web-01 not loaded")
	}
	want := wal.Credential{AccessKeyID: testAKID, AccessKeySecret: testSecret}
	if u.Principal.Project != "p1" || u.Principal.Credential != want || u.Principal.User != "web-01" {
		t.Fatalf("principal %+v", u.Principal)
	}
	for _, m := range []string{engine.SCRAMSHA256, engine.SCRAMSHA512} {
		if !u.SCRAM[m].MatchesPassword(m, "pw-web-01") || u.SCRAM[m].MatchesPassword(m, "pw-web-02") {
			t.Fatalf("%s credential does not check the password", m)
		}
	}
	f := func(logstore string, want bool) {
		t.Helper()
		if got := u.Principal.Rights.Allows(logstore); got != want {
			t.Fatalf("Allows(%q) = %v", logstore, got)
		}
	}
	f("nginx", true)
	f("nginx2", false)
	f("app-x", true)
	f("app", false)

	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "cert-host", Organization: []string{"Example"}}}
	if cu, ok := d.CertUser(cert); !ok || cu.Name != "cert-host" || !cu.Principal.Rights.Allows("anything") {
		t.Fatalf("certificate by subject: %v %v", cu, ok)
	}
	uri, _ := url.Parse("spiffe://example/host")
	if cu, ok := d.CertUser(&x509.Certificate{Subject: pkix.Name{CommonName: "other"}, URIs: []*url.URL{uri}}); !ok || cu.Name != "cert-host" {
		t.Fatal("certificate by URI SAN not found")
	}
	if _, ok := d.CertUser(&x509.Certificate{Subject: pkix.Name{CommonName: "stranger"}}); ok {
		t.Fatal("a stranger's certificate maps to a user")
	}
	if got := d.Names(); strings.Join(got, ",") != "cert-host,web-01" {
		t.Fatalf("Names %v", got)
	}
}

func TestDirectoryReload(t *testing.T) {
	path := writeUsers(t, func(f *File) {
		f.Add("a", "pw-a", AddOptions{Project: "p", Key: "prod", Topics: []string{"x"}})
		f.Add("b", "pw-b", AddOptions{Project: "p", Key: "prod", Topics: []string{"x"}})
	})
	d, err := Open(Options{Path: path, LookupEnv: env(map[string]string{"HELD_SECRET": testSecret})})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ReadFile(path)
	if err := f.Remove("b"); err != nil {
		t.Fatal(err)
	}
	WriteFile(path, f)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.User("b"); ok {
		t.Fatal("b survived its removal")
	}
	// A missing or broken file keeps what was loaded.
	os.Rename(path, path+".moved")
	if err := d.Reload(); err == nil {
		t.Fatal("reload of a missing users file reported no error")
	}
	os.Rename(path+".moved", path)

	os.WriteFile(path, []byte("users: {a: {project: p, key: nokey, topics: [x]}}\n"), 0o600)
	err = d.Reload()
	if err == nil || !strings.Contains(err.Error(), `"nokey"`) {
		t.Fatalf("reload of a broken file: %v", err)
	}
	if _, ok := d.User("a"); !ok {
		t.Fatal("a failed reload dropped the users")
	}
}

// TestDirectoryReopen: the auth section read again replaces the inline
// users and keys and the file path; a section that does not load keeps
// everything, and a later Reload reads what Reopen installed.
func TestDirectoryReopen(t *testing.T) {
	path := writeUsers(t, func(f *File) {
		f.Add("in-file", "pw-f", AddOptions{Project: "p", Key: "prod", Topics: []string{"x"}})
	})
	inline := func(users ...string) *AuthConfig {
		f := &File{Keys: map[string]HeldKey{"inline": {AccessKeyID: testAKID, SecretEnv: "HELD_SECRET"}}}
		for _, u := range users {
			if err := f.Add(u, "pw-"+u, AddOptions{Project: "p", Key: "inline", Topics: []string{"x"}}); err != nil {
				t.Fatal(err)
			}
		}
		return &AuthConfig{File: *f}
	}
	start := inline("a", "b")
	d, err := Open(Options{Inline: &start.File, LookupEnv: env(map[string]string{"HELD_SECRET": testSecret})})
	if err != nil {
		t.Fatal(err)
	}
	f := func(c *AuthConfig, want string) {
		t.Helper()
		if err := c.Reopen(d); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(d.Names(), ","); got != want {
			t.Fatalf("users %q, want %q", got, want)
		}
	}
	f(inline("b", "c"), "b,c")
	withFile := inline("c")
	withFile.UsersFile = path
	f(withFile, "c,in-file")
	f(nil, "")
	f(withFile, "c,in-file")
	// A section that does not load (a user defined twice) keeps the users.
	twice := inline("in-file")
	twice.UsersFile = path
	if err := twice.Reopen(d); err == nil || !strings.Contains(err.Error(), `"in-file" is defined twice`) {
		t.Fatalf("Reopen of a broken section: %v", err)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.Names(), ","); got != "c,in-file" {
		t.Fatalf("after a failed Reopen and a Reload: users %q", got)
	}
}

func TestHeldKeySources(t *testing.T) {
	walKey := []byte(testWALKey)
	sealed, err := SealSecret(walKey, testAKID, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, testSecret) {
		t.Fatal("sealed text holds the secret")
	}
	dir := t.TempDir()
	plainFile, sealedFile := filepath.Join(dir, "plain"), filepath.Join(dir, "sealed")
	os.WriteFile(plainFile, []byte(testSecret+"\n"), 0o600)
	os.WriteFile(sealedFile, []byte(sealed+"\n"), 0o600)
	f := func(k HeldKey, key []byte, wantErr string) {
		t.Helper()
		c, err := k.resolve(&Options{EncryptionKey: key, LookupEnv: env(map[string]string{"S": testSecret, "ID": testAKID})})
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%+v: err %v, want %q", k, err, wantErr)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error %q holds the secret", err)
			}
			return
		}
		if err != nil || c != (wal.Credential{AccessKeyID: testAKID, AccessKeySecret: testSecret}) {
			t.Fatalf("%+v: %v %v", k, c.AccessKeyID, err)
		}
	}
	f(HeldKey{AccessKeyID: testAKID, SecretEnv: "S"}, nil, "")
	f(HeldKey{AccessKeyIDEnv: "ID", SecretEnv: "S"}, nil, "")
	f(HeldKey{AccessKeyID: testAKID, SecretFile: plainFile}, nil, "")
	f(HeldKey{AccessKeyID: testAKID, SecretFile: sealedFile}, walKey, "")
	f(HeldKey{AccessKeyID: testAKID, SecretSealed: sealed}, walKey, "")
	f(HeldKey{AccessKeyID: testAKID, SecretSealed: sealed}, nil, "no WAL encryption key")
	f(HeldKey{AccessKeyID: testAKID, SecretSealed: sealed}, []byte("ffffffffffffffffffffffffffffffff"), "cannot decrypt")
	f(HeldKey{AccessKeyID: "LTAIother", SecretSealed: sealed}, walKey, "cannot decrypt")
	f(HeldKey{AccessKeyID: testAKID, SecretEnv: "MISSING"}, nil, "MISSING is not set")
	f(HeldKey{AccessKeyID: testAKID, SecretEnv: "S", SecretFile: plainFile}, nil, "exactly one")
	f(HeldKey{SecretEnv: "S"}, nil, "no access_key_id")
}

func TestUserEntryErrors(t *testing.T) {
	good, _ := NewSCRAM(engine.SCRAMSHA256, "pw", DefaultIterations)
	f := func(u User, wantErr string) {
		t.Helper()
		_, err := build(&File{Keys: map[string]HeldKey{"k": {AccessKeyID: "id", SecretEnv: "S"}}, Users: map[string]User{"u": u}},
			&Options{LookupEnv: env(map[string]string{"S": "s"})})
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%+v: err %v, want %q", u, err, wantErr)
		}
	}
	f(User{Key: "k", Topics: []string{"x"}, SCRAMSHA256: good}, "no project")
	f(User{Project: "p", Key: "k2", Topics: []string{"x"}, SCRAMSHA256: good}, `key "k2"`)
	f(User{Project: "p", Key: "k", SCRAMSHA256: good}, "no topics")
	f(User{Project: "p", Key: "k", Topics: []string{"a*b"}, SCRAMSHA256: good}, "only at the end")
	f(User{Project: "p", Key: "k", Topics: []string{"x"}}, "cannot log in")
	f(User{Project: "p", Key: "k", Topics: []string{"x"}, SCRAMSHA512: good}, "must be 64 bytes")
	f(User{Project: "p", Key: "k", Topics: []string{"x"}, SCRAMSHA256: &SCRAM{Salt: good.Salt, Iterations: 10, StoredKey: good.StoredKey, ServerKey: good.ServerKey}}, "iterations 10")
}

// TestAuthConfigInlineAndFile: users from the daemon's auth section and
// from its users file are merged; a name in both is refused.
func TestAuthConfigInlineAndFile(t *testing.T) {
	t.Setenv("HELD_SECRET", testSecret)
	path := writeUsers(t, func(f *File) {
		f.Add("from-file", "pw1", AddOptions{Project: "p", Key: "prod", Topics: []string{"x"}})
	})
	var inline File
	inline.Add("inline", "pw2", AddOptions{Project: "p", Key: "prod", Topics: []string{"y"}})
	c := AuthConfig{UsersFile: path, File: inline}
	d, err := c.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.Names(), ","); got != "from-file,inline" {
		t.Fatalf("users %s", got)
	}
	c.File.Add("from-file", "pw3", AddOptions{Project: "p", Key: "prod", Topics: []string{"y"}})
	if _, err := c.Open(nil); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Fatalf("a user in both: %v", err)
	}
}
