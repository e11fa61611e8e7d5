package main

// Relay users written inline in the configuration's auth section (no
// users file), changed by an operator who edits the file and sends
// SIGHUP: a user removed loses its connections and cannot log in again, a
// user added logs in, both with kafka-python as the real client (SCRAM,
// its raw-token path), and the reload names nothing as needing a restart.

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/engine/users"
)

// pyAs is how kafka-python reaches u's SASL_PLAINTEXT or SASL_SSL listener
// as user with SCRAM-SHA-512, writing topic.
func (u *usersChild) pyAs(t testing.TB, protocol, user, password, topic string) kafkatest.PyConfig {
	l := kafkatest.Listener{Addr: u.text(), User: user, Password: password}
	if protocol == "SASL_SSL" {
		l.Addr, l.TLS, l.CAFile = u.cfg.sasl(), clientTLS(certPool(t, u.ca.CA)), u.ca.CA
	}
	cfg := l.KafkaPython(topic)
	cfg.Mechanism, cfg.Acks, cfg.ClientID = engine.SCRAMSHA512, -1, "kafka-python-inline-users"
	return cfg
}

// pyRecs are recs as kafka-python sends them.
func pyRecs(recs []sent) []kafkatest.PyRecord {
	out := make([]kafkatest.PyRecord, len(recs))
	for i, r := range recs {
		out[i] = kafkatest.PyRecord{ID: i, Value: string(r.Value)}
	}
	return out
}

func TestOpsUsersInlineReload(t *testing.T) {
	t.Parallel()
	kafkatest.KafkaPython(t)
	s := newUsersSetup(t)
	file, err := users.ReadFile(s.usersFile)
	if err != nil {
		t.Fatal(err)
	}
	// inline is the auth section holding the held keys and only the
	// named users of the setup's file, and no users file.
	inline := func(names ...string) *users.AuthConfig {
		a := &users.AuthConfig{File: users.File{Keys: file.Keys, Users: map[string]users.User{}}}
		for _, n := range names {
			a.Users[n] = file.Users[n]
		}
		return a
	}
	u := startUsersChild(t, s, func(c *childConfig) { c.Auth = inline(web01) })

	deliver := func(t *testing.T, cfg kafkatest.PyConfig, project string, recs []sent) {
		t.Helper()
		res := kafkatest.KafkaPythonProduce(t, cfg, pyRecs(recs), e2eTimeout)
		if res.Acked() != len(recs) || res.Fatal != "" {
			t.Fatalf("%s: want %d acknowledged; %s", cfg.User, len(recs), res)
		}
		waitFor(t, e2eTimeout, fmt.Sprintf("%s's records in %s/%s", cfg.User, project, cfg.Topic), func() bool {
			got := idsIn(u.fake.Logs(project, cfg.Topic))
			for _, r := range recs {
				if got[r.ID] == 0 {
					return false
				}
			}
			return true
		})
	}
	refused := func(t *testing.T, cfg kafkatest.PyConfig) {
		t.Helper()
		res := kafkatest.KafkaPythonProduce(t, cfg, pyRecs(userRecs(9900, 1, "refused")), e2eTimeout)
		if res.Acked() != 0 || !strings.Contains(res.Fatal, "NoBrokersAvailable") {
			t.Fatalf("%s logged in: %s", cfg.User, res)
		}
	}

	// Before: web-01 (inline) delivers; web-02 (in the file, not in the
	// section) is no user. A raw connection stays logged in as web-01.
	deliver(t, u.pyAs(t, "SASL_PLAINTEXT", web01, web01Password, "u-nginx"), usersProject, userRecs(1, 4, "web-01 inline"))
	refused(t, u.pyAs(t, "SASL_SSL", web02, web02Password, "s-logs"))
	raw := kafkatest.DialT(t, u.text(), nil)
	if msg := scramLoginRaw(t, raw, engine.SCRAMSHA512, web01, web01Password); msg != "" {
		t.Fatalf("web-01 raw login: %s", msg)
	}

	// The operator moves the section from web-01 to web-02 and sends
	// SIGHUP.
	u.cfg.Auth = inline(web02)
	u.cfg.write(t, u.cfgPath)
	reloads := len(u.c.stderr.lines("msg=reloaded"))
	u.c.signal(t, syscall.SIGHUP)
	u.c.stderr.wait(t, 10*time.Second, reloads, "msg=reloaded")
	u.c.stderr.wait(t, 5*time.Second, 0, "closed the connections of removed relay users")
	if ls := u.c.stderr.lines("relay users kept as they were"); len(ls) > 0 {
		t.Fatalf("the reload did not apply the auth section: %q", ls)
	}
	if ls := u.c.stderr.lines("take effect at the next restart"); len(ls) > 0 {
		t.Errorf("the reload says the auth section needs a restart: %q", ls)
	}

	// After: web-01's connection is closed and it cannot log in; web-02
	// delivers under its own project.
	raw.ExpectClosed()
	refused(t, u.pyAs(t, "SASL_PLAINTEXT", web01, web01Password, "u-nginx"))
	deliver(t, u.pyAs(t, "SASL_SSL", web02, web02Password, "s-logs"), sealedProject, userRecs(20, 4, "web-02 inline after SIGHUP"))
	if n := idsIn(u.fake.Logs(usersProject, "u-nginx"))[e2eID(9900)]; n != 0 {
		t.Errorf("a refused record reached the stand-in %d times", n)
	}
	checkNoSecrets(t, "the relay's log", u.c.stderr.String(), "SASL authentication failed", s.secrets(t))
}
