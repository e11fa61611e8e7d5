package main

// Revoking a relay user on the real binary: `slsrelay user remove`, then
// SIGHUP. The removed user's open connections are closed and its next
// login fails; another user's open connection keeps producing and it logs
// in again. Per-user counters are in /metrics, and no secret (passwords,
// the users file's salted keys, the held AccessKey secrets, the WAL key)
// is in the log, /metrics or `slsrelay wal status`, live or stopped.

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

func TestOpsUsersRevoke(t *testing.T) {
	t.Parallel()
	s := newUsersSetup(t)
	u := startUsersChild(t, s, nil)
	bin, fake, cfg, cfgPath, c, ca, text := u.bin, u.fake, u.cfg, u.cfgPath, u.c, u.ca, u.text()

	login := func(user, password string) (*kafkatest.TConn, string) {
		conn := kafkatest.DialT(t, text, nil)
		return conn, scramLoginRaw(t, conn, engine.SCRAMSHA512, user, password)
	}
	produce := func(conn *kafkatest.TConn, store string, id int, what string) error {
		return conn.Conn().Produce(store, 0, -1, e2eID(id)+" "+what)
	}
	// Before: web-01 on a raw connection and a franz-go client over TLS,
	// web-02 on a raw connection.
	web01Conn, msg := login(web01, web01Password)
	if msg != "" {
		t.Fatalf("web-01 login: %s", msg)
	}
	if err := produce(web01Conn, "u-nginx", 1, "web-01 before"); err != nil {
		t.Fatalf("web-01 before the removal: %v", err)
	}
	tlsOpts := append(kafkatest.Listener{Addr: cfg.sasl(), TLS: clientTLS(certPool(t, ca.CA))}.KgoOpts(),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(2), kgo.SASL(scramMechanism(engine.SCRAMSHA256, web01, web01Password)))
	web01TLS := newKgo(t, tlsOpts...)
	if err := produceKgo(t, web01TLS, "u-nginx", userRecs(2, 1, "web-01 over TLS before")); err != nil {
		t.Fatalf("web-01 over SASL_SSL before the removal: %v", err)
	}
	web02Conn, msg := login(web02, web02Password)
	if msg != "" {
		t.Fatalf("web-02 login: %s", msg)
	}
	if err := produce(web02Conn, "s-logs", 3, "web-02 before"); err != nil {
		t.Fatalf("web-02 before the removal: %v", err)
	}

	// Remove web-01 as an operator would, and SIGHUP.
	userCmd(t, "", "remove", "-file", s.usersFile, web01)
	reloads := len(c.stderr.lines("msg=reloaded"))
	c.signal(t, syscall.SIGHUP)
	c.stderr.wait(t, 10*time.Second, reloads, "msg=reloaded")
	if line := c.stderr.wait(t, 5*time.Second, 0, "closed the connections of removed relay users"); !strings.Contains(line, "connections=") {
		t.Errorf("the reload's line does not say how many connections it closed: %s", line)
	}
	if ls := c.stderr.lines("relay users kept as they were"); len(ls) > 0 {
		t.Fatalf("the reload did not read the users file: %q", ls)
	}

	// web-01: its connection is closed, a new login fails, and the client
	// that was logged in cannot produce any more.
	web01Conn.ExpectClosed()
	if _, msg := login(web01, web01Password); msg == "" {
		t.Fatal("the removed user logged in again")
	}
	if err := produceKgo(t, web01TLS, "u-nginx", userRecs(4, 1, "web-01 over TLS after")); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("web-01's client after the removal: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	// web-02: the open connection keeps working, and so does a new login.
	if err := produce(web02Conn, "s-logs", 5, "web-02 after, same connection"); err != nil {
		t.Errorf("web-02's connection after the reload: %v", err)
	}
	again, msg := login(web02, web02Password)
	if msg != "" {
		t.Fatalf("web-02 login after the reload: %s", msg)
	}
	if err := produce(again, "s-logs", 6, "web-02 after, new connection"); err != nil {
		t.Errorf("web-02's new connection: %v", err)
	}

	// What was acknowledged reached the stand-in under each user's
	// project (which only that user's held key may write); nothing after
	// the removal did.
	check := func(project, store string, want, never []int) {
		t.Helper()
		waitFor(t, e2eTimeout, "the acknowledged records in "+project+"/"+store, func() bool {
			got := idsIn(fake.Logs(project, store))
			for _, id := range want {
				if got[e2eID(id)] == 0 {
					return false
				}
			}
			return true
		})
		got := idsIn(fake.Logs(project, store))
		for _, id := range never {
			if got[e2eID(id)] != 0 {
				t.Errorf("%s/%s holds %s, refused after the removal", project, store, e2eID(id))
			}
		}
	}
	check(usersProject, "u-nginx", []int{1, 2}, []int{4})
	check(sealedProject, "s-logs", []int{3, 5, 6}, nil)

	m := scrape(t, cfg.admin())
	for _, c := range []struct {
		name, user string
		min        float64
	}{
		{"slsrelay_user_logins_total", web01, 2},
		{"slsrelay_user_logins_total", web02, 2},
		// A removed user's failed logins count as an unknown name's:
		// names that are no user get no series of their own.
		{"slsrelay_user_login_failures_total", "(unknown)", 2},
		{"slsrelay_user_bytes_in_total", web01, 1},
		{"slsrelay_user_bytes_in_total", web02, 1},
	} {
		if got := m.get(c.name, "user", c.user); got < c.min {
			t.Errorf("%s{user=%q} = %v, want at least %v", c.name, c.user, got, c.min)
		}
	}

	// No secret in /metrics, `wal status` (live, then stopped) or the log.
	secrets := s.secrets(t)
	_, body, err := httpGet(cfg.admin(), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	checkNoSecrets(t, "/metrics", body, "slsrelay_user_logins_total", secrets)
	walStatus := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "wal", "status", "-config", cfgPath).CombinedOutput()
		if err != nil {
			t.Fatalf("slsrelay wal status: %v\n%s", err, out)
		}
		return string(out)
	}
	checkNoSecrets(t, "wal status (running)", walStatus(), usersProject+"/u-nginx", secrets)
	c.signal(t, syscall.SIGTERM)
	if code, ok := c.exited(opsGrace); !ok || code != 0 {
		t.Errorf("after SIGTERM: exited %v, code %d; want exit 0 within %v", ok, code, opsGrace)
	}
	checkNoSecrets(t, "wal status (stopped)", walStatus(), sealedProject+"/s-logs", secrets)
	checkNoSecrets(t, "the relay's log", c.stderr.String(), "SASL authentication failed", secrets)
	if len(c.stderr.lines("level=DEBUG")) == 0 {
		t.Error("no debug line in the log: the secret check saw the info level only")
	}
	checkNoSecrets(t, "the relay's stdout", c.stdout.String(), "SASL_PLAINTEXT", secrets)
}

// usersChild is the slsrelay binary running on a usersSetup, delivering to
// a stand-in in the test process (reached through HTTP_PROXY as in
// testSIGTERM, so that what reached it can be read directly).
type usersChild struct {
	bin     string
	fake    *slsfake.Server
	ca      engine.SelfSignedFiles // the SASL_SSL listener's
	cfg     childConfig
	cfgPath string
	c       *child
}

// startUsersChild configures the binary on s (debug log, so that secret
// checks see every line), lets edit change the config before it is
// written, and starts it.
func startUsersChild(t *testing.T, s *usersSetup, edit func(*childConfig)) *usersChild {
	t.Helper()
	u := &usersChild{bin: slsrelayBinary(t)}
	dir := t.TempDir()
	u.ca = selfSigned(t, filepath.Join(dir, "tls"))
	fake, err := slsfake.New(usersFakeConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	u.fake = fake
	u.cfg = newChildConfig(t, dir, u.ca.Cert, u.ca.Key)
	u.cfg.sendTo(fake.Endpoint())
	s.configure(u.cfg.Config, freeAddr(t), freeAddr(t))
	u.cfg.Log.Level = "debug"
	if edit != nil {
		edit(&u.cfg)
	}
	u.cfgPath = filepath.Join(dir, "slsrelay.yaml")
	u.cfg.write(t, u.cfgPath)
	u.c = startChild(t, "slsrelay", u.bin, u.cfgPath, childEnv("HTTP_PROXY=http://"+fake.Addr(), heldSecretEnv+"="+heldSecret))
	u.c.waitReady(t, u.cfg.admin(), 30*time.Second)
	return u
}

// text is the SASL_PLAINTEXT listener's address (usersSetup.configure).
func (u *usersChild) text() string { return u.cfg.Listeners[len(u.cfg.Listeners)-2].Bind }
