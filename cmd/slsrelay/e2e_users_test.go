package main

// Relay users through the real relay (package relay, as the daemon builds
// it): a users file written with `slsrelay user`, a held AccessKey from an
// environment variable and one sealed with the WAL key, and real clients
// logging in as relay users — franz-go SCRAM-SHA-256/512, sarama SCRAM as
// the Beats run it (SaslHandshake v0, raw tokens), kcat SCRAM-SHA-512, a
// client certificate on an SSL listener — over SASL_SSL and
// SASL_PLAINTEXT. Their records reach the stand-in under the user's
// project, and only the held key can have signed them: the stand-in gives
// write access to the users' projects to the held keys alone (a policy
// only they have), and a login with the demo key to the same project is
// refused. Wrong passwords, unknown users, topics outside the rights and
// certificates of no user are refused and store nothing; per-user
// counters appear in /metrics; no secret appears in the log, /metrics or
// the WAL status. kafka-python (SCRAM over its raw-token path) delivers
// too.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/engine/users"
)

// The projects relay users write to, and the AccessKeys only the relay
// holds for them. Each held key may write its project; the demo key may
// not (usersFakeConfig).
const (
	usersProject  = "users-project"
	sealedProject = "users-sealed"

	heldAKID      = "held-akid"
	heldSecret    = "held-secret-7f3a9c0e"
	heldSecretEnv = "SLSRELAY_E2E_HELD_SECRET"
	sealedAKID    = "sealed-akid"
	sealedSecret  = "sealed-secret-51be02d4"

	web01, web01Password = "web-01", "pw-web-01-a8f2e6"
	web02, web02Password = "web-02", "pw-web-02-c4d1b9"
	certHost             = "cert-host"
)

// usersFakeConfig is e2eFakeConfig plus the users' projects, each
// writable by its held key only; the demo key keeps test-project-1.
func usersFakeConfig() slsfake.Config {
	fc := e2eFakeConfig()
	store := func(name string) slsfake.LogstoreConfig { return slsfake.LogstoreConfig{Name: name, ShardCount: 2} }
	fc.Projects = append(fc.Projects,
		slsfake.ProjectConfig{Name: usersProject, Logstores: []slsfake.LogstoreConfig{
			store("u-nginx"), store("u-app-1"), store("u-app-refused"), store("u-other"), store("u-cert"), store("u-ops")}},
		slsfake.ProjectConfig{Name: sealedProject, Logstores: []slsfake.LogstoreConfig{store("s-logs")}})
	rw := slsfake.Permission{Read: true, Write: true}
	fc.AccessKeys = []slsfake.AccessKeyConfig{
		{ID: relaytest.AKID, Secret: relaytest.Secret, Projects: map[string]slsfake.Permission{relaytest.Project: rw}},
		{ID: heldAKID, Secret: heldSecret, Projects: map[string]slsfake.Permission{usersProject: rw}},
		{ID: sealedAKID, Secret: sealedSecret, Projects: map[string]slsfake.Permission{sealedProject: rw}},
	}
	return fc
}

// userCmd runs `slsrelay user args…` with stdin as the operator's typed
// password or secret, and fails the test unless it exits 0.
func userCmd(t testing.TB, stdin string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	if code := runUser(args, strings.NewReader(stdin), &out, &out); code != 0 {
		t.Fatalf("slsrelay user %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
	}
}

// writeWALKey writes a fresh WAL encryption key (hex) and returns its path
// and text.
func writeWALKey(t testing.TB, dir string) (path, text string) {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	path, text = filepath.Join(dir, "wal.key"), hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, text
}

// usersSetup is what an operator prepares: the WAL key, the users file
// and the client CA of the SSL listener.
type usersSetup struct {
	dir, walKeyFile, walKey, usersFile string
	clientCA                           string          // PEM file the SSL listener trusts
	certKnown, certStranger            tls.Certificate // CN=cert-host (a user) and CN=stranger (none)
}

// newUsersSetup writes the users file with `slsrelay user` as the README
// tells an operator to: the held key from an environment variable, the
// sealed one typed in and sealed with the WAL key, web-01 (both SCRAMs;
// u-nginx and u-app-*), web-02 (SCRAM-SHA-512 only, every Logstore of the
// sealed key's project) and cert-host (a certificate, no password).
func newUsersSetup(t testing.TB) *usersSetup {
	t.Helper()
	s := &usersSetup{dir: t.TempDir()}
	s.walKeyFile, s.walKey = writeWALKey(t, s.dir)
	s.usersFile = filepath.Join(s.dir, "users.yaml")
	// The process environment, as an init system's EnvironmentFile sets
	// it; the same value for every test, so concurrent setters agree.
	if err := os.Setenv(heldSecretEnv, heldSecret); err != nil {
		t.Fatal(err)
	}
	f := s.usersFile
	userCmd(t, "", "key", "-file", f, "-akid", heldAKID, "-secret-env", heldSecretEnv, "prod")
	userCmd(t, sealedSecret+"\n", "key", "-file", f, "-akid", sealedAKID, "-seal", "-wal-key-file", s.walKeyFile, "sealed")
	userCmd(t, web01Password+"\n", "add", "-file", f, "-project", usersProject, "-key", "prod", "-topics", "u-nginx,u-app-*", web01)
	userCmd(t, web02Password+"\n", "add", "-file", f, "-project", sealedProject, "-key", "sealed", "-topics", "*", "-mechanisms", "SCRAM-SHA-512", web02)
	userCmd(t, "", "add", "-file", f, "-project", usersProject, "-key", "prod", "-topics", "u-cert", "-no-password", "-cert-subject", "CN="+certHost, certHost)
	s.clientCA = filepath.Join(s.dir, "clients-ca.pem")
	s.certKnown, s.certStranger = clientCerts(t, s.clientCA, certHost, "stranger")
	return s
}

// secrets are every secret the setup holds: passwords, held secrets, the
// WAL key and the salted keys of the users file.
func (s *usersSetup) secrets(t testing.TB) []string {
	t.Helper()
	out := []string{web01Password, web02Password, heldSecret, sealedSecret, s.walKey}
	f, err := users.ReadFile(s.usersFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range f.Users {
		for _, c := range []*users.SCRAM{u.SCRAMSHA256, u.SCRAMSHA512} {
			if c != nil {
				out = append(out, c.StoredKey, c.ServerKey)
			}
		}
	}
	for _, k := range f.Keys {
		if k.SecretSealed != "" {
			out = append(out, k.SecretSealed)
		}
	}
	return out
}

// configure gives cfg the auth section and the users' listeners: SASL_SSL
// with PLAIN (AccessKeys or users) and both SCRAMs, SASL_PLAINTEXT with
// the SCRAMs, SSL with the client CA. binds are their addresses, in that
// order ("127.0.0.1:0" in process; fixed ports for the binary).
func (s *usersSetup) configure(cfg *relay.Config, binds ...string) {
	cfg.WAL.EncryptionKeyFile = s.walKeyFile
	cfg.Auth = &users.AuthConfig{UsersFile: s.usersFile}
	scrams := []string{engine.SCRAMSHA256, engine.SCRAMSHA512}
	for i := range cfg.Listeners {
		if cfg.Listeners[i].Protocol == engine.SASLSSL {
			cfg.Listeners[i].Mechanisms = append([]string{engine.PLAIN}, scrams...)
			cfg.Listeners[i].Plain = engine.PlainEither
		}
	}
	self := &relay.TLSConfig{SelfSigned: true, SelfSignedHosts: []string{"localhost", "127.0.0.1"}, ClientCA: s.clientCA}
	cfg.Listeners = append(cfg.Listeners,
		relay.ListenerConfig{ListenerOptions: engine.ListenerOptions{Name: "SASL_PLAINTEXT", Protocol: engine.SASLPlaintext, Bind: binds[0], Mechanisms: scrams}},
		relay.ListenerConfig{ListenerOptions: engine.ListenerOptions{Name: "SSL", Protocol: engine.SSL, Bind: binds[1]}, TLSFiles: self})
}

// clientCerts writes a client CA to caFile and returns certificates it
// signed for the common names known and stranger.
func clientCerts(t testing.TB, caFile, known, stranger string) (tls.Certificate, tls.Certificate) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e clients CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, cn string) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	return leaf(2, known), leaf(3, stranger)
}

// scramMechanism is franz-go's SCRAM client for mech.
func scramMechanism(mech, user, password string) sasl.Mechanism {
	a := scram.Auth{User: user, Pass: password}
	if mech == engine.SCRAMSHA512 {
		return a.AsSha512Mechanism()
	}
	return a.AsSha256Mechanism()
}

// saramaSCRAM is sarama's SCRAM hook (Config.Net.SASL.SCRAMClientGeneratorFunc,
// which the Beats fill with a SCRAM library of their own) driving
// franz-go's SCRAM client: an implementation independent of the relay's.
type saramaSCRAM struct {
	mech, user, password string
	sess                 sasl.Session
	done                 bool
}

func (c *saramaSCRAM) Begin(user, password, _ string) error {
	c.user, c.password = user, password
	return nil
}

func (c *saramaSCRAM) Step(challenge string) (string, error) {
	if c.sess == nil {
		sess, first, err := scramMechanism(c.mech, c.user, c.password).Authenticate(context.Background(), "")
		c.sess = sess
		return string(first), err
	}
	done, resp, err := c.sess.Challenge([]byte(challenge))
	c.done = done
	return string(resp), err
}

func (c *saramaSCRAM) Done() bool { return c.done }

// scramLoginRaw logs c in with SaslHandshake v1 + SaslAuthenticate and
// franz-go's SCRAM client, and returns the relay's error message ("" if
// the login succeeded).
func scramLoginRaw(t testing.TB, c *kafkatest.TConn, mech, user, password string) string {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, mech
	if r := c.RoundTrip(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		t.Fatalf("SaslHandshake %s: error %d", mech, r.ErrorCode)
	}
	sess, msg, err := scramMechanism(mech, user, password).Authenticate(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for {
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.Version, auth.SASLAuthBytes = 1, msg
		resp := c.RoundTrip(auth).(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != 0 {
			if resp.ErrorMessage == nil {
				return fmt.Sprint("error ", resp.ErrorCode)
			}
			return *resp.ErrorMessage
		}
		done, next, err := sess.Challenge(resp.SASLAuthBytes)
		if err != nil {
			t.Fatalf("SCRAM client: %v", err)
		}
		if done {
			return ""
		}
		msg = next
	}
}

// userRecs are n records with ids from first, tagged with how they were
// sent, alternating over two partitions.
func userRecs(first, n int, how string) []sent {
	out := make([]sent, n)
	for i := range out {
		id := e2eID(first + i)
		out[i] = sent{ID: id, Partition: int32(i % 2), Value: []byte(id + " " + how)}
	}
	return out
}

// usersRelay is a relay started on a usersSetup.
type usersRelay struct {
	*testRelay
	setup *usersSetup
}

func startUsersRelay(t *testing.T, mods ...func(*relay.Config)) *usersRelay {
	t.Helper()
	s := newUsersSetup(t)
	cfg := e2eConfig(t)
	cfg.SLS.StandIn.Config = relaytest.StandInFile(t, usersFakeConfig())
	s.configure(cfg, "127.0.0.1:0", "127.0.0.1:0")
	for _, m := range mods {
		m(cfg)
	}
	return &usersRelay{testRelay: startTestRelayConfig(t, cfg), setup: s}
}

// at is how a client reaches the listener name: its address and, for a
// TLS listener, the relay's CA with cert as the client certificate.
func (r *usersRelay) at(name string, cert *tls.Certificate) kafkatest.Listener {
	l := kafkatest.Listener{Addr: r.Addrs.Listeners[name]}
	if name == "SASL_SSL" || name == "SSL" {
		l.TLS, l.CAFile = r.TLS.Clone(), r.Addrs.CA
		if cert != nil {
			l.TLS.Certificates = []tls.Certificate{*cert}
		}
	}
	return l
}

// kgoAs is a franz-go client reaching listener name, logging in with m (nil:
// no SASL), with few retries so that refusals come back quickly; extra
// options come last.
func (r *usersRelay) kgoAs(t testing.TB, name string, m sasl.Mechanism, cert *tls.Certificate, extra ...kgo.Opt) *kgo.Client {
	opts := append(r.at(name, cert).KgoOpts(), kgo.ProducerLinger(5*time.Millisecond), kgo.DisableIdempotentWrite(), kgo.RecordRetries(2))
	opts = append(opts, extra...)
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return newKgo(t, opts...)
}

// saramaAs is sarama as the Beats configure it (Kafka 2.1.0, a SCRAM
// client from the generator hook) at SaslHandshake version hs: v0 sends
// raw SCRAM tokens without ApiVersions, v1 SaslAuthenticate after
// ApiVersions.
func (r *usersRelay) saramaAs(name string, hs int16, mech, user, password string) *sarama.Config {
	cfg := r.at(name, nil).SaramaConfig(sarama.V2_1_0_0)
	cfg.ClientID = "sarama-users-e2e"
	cfg.ApiVersionsRequest = hs == sarama.SASLHandshakeV1
	cfg.Net.SASL.Enable, cfg.Net.SASL.Handshake, cfg.Net.SASL.Version = true, true, hs
	cfg.Net.SASL.Mechanism = sarama.SASLMechanism(mech)
	cfg.Net.SASL.User, cfg.Net.SASL.Password = user, password
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{mech: mech} }
	cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = 15*time.Second, 15*time.Second
	cfg.Metadata.Retry.Max, cfg.Metadata.Retry.Backoff = 2, 50*time.Millisecond
	cfg.Producer.Retry.Max, cfg.Producer.Retry.Backoff = 2, 50*time.Millisecond
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	return cfg
}

// kcatAs sends recs' values (one a line) to topic with kcat logging in as
// user with mech through listener name; it returns kcat's output on error.
func (r *usersRelay) kcatAs(t testing.TB, name, mech, user, password, topic string, recs []sent, timeoutMs int) error {
	t.Helper()
	l := r.at(name, nil)
	proto := "SASL_PLAINTEXT"
	args := []string{"-P", "-b", l.Addr, "-t", topic, "-X", fmt.Sprintf("message.timeout.ms=%d", timeoutMs), "-X", "socket.timeout.ms=10000", "-X", "linger.ms=5"}
	if l.TLS != nil {
		proto = "SASL_SSL"
		args = append(args, "-X", "ssl.ca.location="+l.CAFile)
	}
	args = append(args, "-X", "security.protocol="+proto, "-X", "sasl.mechanisms="+mech, "-X", "sasl.username="+user, "-X", "sasl.password="+password)
	return runKcat(t, args, recs)
}

// waitStored waits until the stand-in holds every record of recs in
// project/store, once each.
func (r *usersRelay) waitStored(t testing.TB, project, store string, recs []sent) {
	t.Helper()
	var got map[string]int
	waitFor(t, e2eTimeout, fmt.Sprintf("%d records in %s/%s", len(recs), project, store), func() bool {
		got = idsIn(r.fake.Logs(project, store))
		for _, s := range recs {
			if got[s.ID] == 0 {
				return false
			}
		}
		return true
	})
	for _, s := range recs {
		if got[s.ID] > 1 {
			t.Errorf("%s/%s: record %s stored %d times", project, store, s.ID, got[s.ID])
		}
	}
}

// walTook returns how many records the WAL ever took for project/store.
func (r *usersRelay) walTook(project, store string) int64 {
	var n int64
	for _, st := range r.WAL().Stats().Streams {
		if st.Key.Project == project && st.Key.Logstore == store {
			n += st.NextOffset
		}
	}
	return n
}

// checkNoSecrets fails if any of secrets appears in text (what names it).
// want is a string the text must hold, so that the check looks at something.
func checkNoSecrets(t testing.TB, what, text, want string, secrets []string) {
	t.Helper()
	if !strings.Contains(text, want) {
		t.Errorf("%s lacks %q: the secret check would look at nothing", what, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds a secret (%d characters, starting %q)", what, len(s), s[:min(3, len(s))])
		}
	}
}

func TestE2EUsers(t *testing.T) {
	t.Parallel()
	r := startUsersRelay(t)
	const nginx = "u-nginx"

	t.Run("deliver", func(t *testing.T) {
		for i, name := range []string{"SASL_SSL", "SASL_PLAINTEXT"} {
			for j, mech := range []string{engine.SCRAMSHA256, engine.SCRAMSHA512} {
				t.Run("franz/"+name+"/"+mech, func(t *testing.T) {
					t.Parallel()
					recs := userRecs(100*(1+2*i+j), 10, "franz "+name+" "+mech)
					if err := produceKgo(t, r.kgoAs(t, name, scramMechanism(mech, web01, web01Password), nil), nginx, recs); err != nil {
						t.Fatalf("produce: %v", err)
					}
					r.waitStored(t, usersProject, nginx, recs)
				})
			}
			for k, hs := range []int16{sarama.SASLHandshakeV0, sarama.SASLHandshakeV1} {
				t.Run(fmt.Sprintf("sarama/%s/handshake-v%d/SCRAM-SHA-512", name, hs), func(t *testing.T) {
					t.Parallel()
					recs := userRecs(1000+100*(2*i+k), 8, "sarama")
					cfg := r.saramaAs(name, hs, engine.SCRAMSHA512, web01, web01Password)
					if err := produceSarama(t, r.Addrs.Listeners[name], cfg, "u-app-1", recs); err != nil {
						t.Fatalf("produce: %v", err)
					}
					r.waitStored(t, usersProject, "u-app-1", recs)
				})
			}
			t.Run("kcat/"+name+"/SCRAM-SHA-512", func(t *testing.T) {
				t.Parallel()
				recs := userRecs(2000+100*i, 8, "kcat")
				if err := r.kcatAs(t, name, engine.SCRAMSHA512, web01, web01Password, nginx, recs, 20000); err != nil {
					t.Fatal(err)
				}
				r.waitStored(t, usersProject, nginx, recs)
			})
		}
		for i, name := range []string{"SASL_SSL", "SASL_PLAINTEXT"} {
			for j, mech := range []string{engine.SCRAMSHA256, engine.SCRAMSHA512} {
				t.Run("kafka-python/"+name+"/"+mech, func(t *testing.T) {
					t.Parallel()
					recs := userRecs(3400+10*(2*i+j), 6, "kafka-python "+name+" "+mech)
					l := r.at(name, nil)
					l.User, l.Password = web01, web01Password
					cfg := l.KafkaPython(nginx)
					cfg.Mechanism, cfg.Acks = mech, -1
					if res := kafkatest.KafkaPythonProduce(t, cfg, pyRecs(recs), e2eTimeout); res.Acked() != len(recs) {
						t.Fatalf("want %d acknowledged; %s", len(recs), res)
					}
					r.waitStored(t, usersProject, nginx, recs)
				})
			}
		}
		t.Run("sarama/SASL_SSL/handshake-v0/SCRAM-SHA-256", func(t *testing.T) {
			t.Parallel()
			recs := userRecs(2500, 4, "sarama 256")
			if err := produceSarama(t, r.Addrs.Listeners["SASL_SSL"], r.saramaAs("SASL_SSL", sarama.SASLHandshakeV0, engine.SCRAMSHA256, web01, web01Password), "u-app-1", recs); err != nil {
				t.Fatalf("produce: %v", err)
			}
			r.waitStored(t, usersProject, "u-app-1", recs)
		})
		t.Run("franz/SASL_SSL/PLAIN-user-password", func(t *testing.T) {
			t.Parallel()
			recs := userRecs(3000, 6, "PLAIN as a relay user")
			if err := produceKgo(t, r.kgoAs(t, "SASL_SSL", plain.Auth{User: web01, Pass: web01Password}.AsMechanism(), nil), "u-app-1", recs); err != nil {
				t.Fatalf("produce: %v", err)
			}
			r.waitStored(t, usersProject, "u-app-1", recs)
		})
		t.Run("franz/SASL_PLAINTEXT/sealed-key", func(t *testing.T) {
			t.Parallel()
			recs := userRecs(3100, 6, "web-02, the sealed key")
			if err := produceKgo(t, r.kgoAs(t, "SASL_PLAINTEXT", scramMechanism(engine.SCRAMSHA512, web02, web02Password), nil), "s-logs", recs); err != nil {
				t.Fatalf("produce: %v", err)
			}
			r.waitStored(t, sealedProject, "s-logs", recs)
		})
		t.Run("franz/SSL/client-certificate", func(t *testing.T) {
			t.Parallel()
			recs := userRecs(3200, 6, "certificate")
			if err := produceKgo(t, r.kgoAs(t, "SSL", nil, &r.setup.certKnown), "u-cert", recs); err != nil {
				t.Fatalf("produce: %v", err)
			}
			r.waitStored(t, usersProject, "u-cert", recs)
		})
		// The control: the held keys' projects refuse the demo key, so
		// what is stored there was signed with a held key.
		t.Run("control/PLAIN-demo-key-to-users-project", func(t *testing.T) {
			t.Parallel()
			cl := r.kgoAs(t, "SASL_SSL", plain.Auth{User: usersProject, Pass: relaytest.Password}.AsMechanism(), nil)
			if err := produceKgo(t, cl, "u-other", userRecs(3300, 2, "demo key")); err == nil {
				t.Fatal("the demo key wrote to the users' project: the stand-in's policy proves nothing")
			}
			// The SLS-compatible login still works where that key may write.
			recs := userRecs(3310, 2, "PLAIN AccessKey")
			cl = r.kgoAs(t, "SASL_SSL", plain.Auth{User: relaytest.Project, Pass: relaytest.Password}.AsMechanism(), nil)
			if err := produceKgo(t, cl, e2eStore(31), recs); err != nil {
				t.Fatalf("PLAIN with the AccessKey: %v", err)
			}
			r.waitStored(t, relaytest.Project, e2eStore(31), recs)
		})
	})
	if t.Failed() {
		return
	}
	for _, store := range []string{nginx, "u-app-1", "u-cert"} {
		if n := r.fake.LogCount(relaytest.Project, store); n != 0 {
			t.Errorf("%d logs under the demo project's %s", n, store)
		}
	}

	t.Run("refusals", func(t *testing.T) {
		const refused = "u-app-refused" // within web-01's rights
		f := func(t *testing.T, cl *kgo.Client, topic string, want *kerr.Error) {
			t.Helper()
			err := produceKgo(t, cl, topic, userRecs(9000, 2, "refused"))
			if want == nil && err == nil || want != nil && !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		}
		for _, name := range []string{"SASL_SSL", "SASL_PLAINTEXT"} {
			for _, mech := range []string{engine.SCRAMSHA256, engine.SCRAMSHA512} {
				t.Run(name+"/"+mech+"/wrong-password", func(t *testing.T) {
					f(t, r.kgoAs(t, name, scramMechanism(mech, web01, "not-"+web01Password), nil), refused, kerr.SaslAuthenticationFailed)
				})
				t.Run(name+"/"+mech+"/unknown-user", func(t *testing.T) {
					f(t, r.kgoAs(t, name, scramMechanism(mech, "nobody", web01Password), nil), refused, kerr.SaslAuthenticationFailed)
				})
			}
		}
		t.Run("SCRAM-SHA-256-of-a-SHA-512-only-user", func(t *testing.T) {
			f(t, r.kgoAs(t, "SASL_PLAINTEXT", scramMechanism(engine.SCRAMSHA256, web02, web02Password), nil), "s-logs", kerr.SaslAuthenticationFailed)
		})
		t.Run("PLAIN-user-password/wrong", func(t *testing.T) {
			f(t, r.kgoAs(t, "SASL_SSL", plain.Auth{User: web01, Pass: "wrong"}.AsMechanism(), nil), refused, kerr.SaslAuthenticationFailed)
		})
		t.Run("topic-outside-rights", func(t *testing.T) {
			f(t, r.kgoAs(t, "SASL_PLAINTEXT", scramMechanism(engine.SCRAMSHA512, web01, web01Password), nil), "u-other", kerr.TopicAuthorizationFailed)
		})
		t.Run("certificate-topic-outside-rights", func(t *testing.T) {
			f(t, r.kgoAs(t, "SSL", nil, &r.setup.certKnown), refused, kerr.TopicAuthorizationFailed)
		})
		t.Run("certificate-of-no-user", func(t *testing.T) {
			kafkatest.DialT(t, r.Addrs.Listeners["SSL"], r.at("SSL", &r.setup.certStranger).TLS).ExpectClosed()
			cl := newKgo(t, append(r.at("SSL", &r.setup.certStranger).KgoOpts(), kgo.DisableIdempotentWrite(), kgo.RetryTimeout(2*time.Second), kgo.RecordDeliveryTimeout(5*time.Second))...)
			f(t, cl, refused, nil)
		})
		t.Run("sarama/handshake-v0/wrong-password", func(t *testing.T) {
			cfg := r.saramaAs("SASL_PLAINTEXT", sarama.SASLHandshakeV0, engine.SCRAMSHA512, web01, "wrong")
			if err := produceSarama(t, r.Addrs.Listeners["SASL_PLAINTEXT"], cfg, refused, userRecs(9100, 1, "refused")); err == nil {
				t.Fatal("a wrong password produced")
			}
		})
		t.Run("kcat/wrong-password", func(t *testing.T) {
			err := r.kcatAs(t, "SASL_SSL", engine.SCRAMSHA512, web01, "wrong", refused, userRecs(9200, 1, "refused"), 3000)
			if err == nil || !strings.Contains(err.Error(), "uthentication") {
				t.Fatalf("kcat with a wrong password: %v", err)
			}
		})
		// The wrong password and the unknown user are told the same.
		msg := func(user string) string {
			return scramLoginRaw(t, kafkatest.DialT(t, r.Addrs.Listeners["SASL_PLAINTEXT"], nil), engine.SCRAMSHA256, user, "wrong")
		}
		if a, b := msg(web01), msg("nobody"); a != b || a == "" {
			t.Errorf("a wrong password is told %q, an unknown user %q", a, b)
		}
		time.Sleep(200 * time.Millisecond) // longer than the writers' linger
		for _, ps := range [][2]string{{usersProject, refused}, {usersProject, "u-other"}, {sealedProject, "s-logs"}} {
			if n := r.fake.LogCount(ps[0], ps[1]); ps[1] != "s-logs" && n != 0 {
				t.Errorf("the stand-in stored %d logs in %s/%s", n, ps[0], ps[1])
			}
			if n := r.walTook(ps[0], ps[1]); ps[1] != "s-logs" && n != 0 {
				t.Errorf("the WAL took %d records for %s/%s", n, ps[0], ps[1])
			}
		}
		if n := r.fake.LogCount(sealedProject, "s-logs"); n != 6 {
			t.Errorf("%s/s-logs holds %d logs, want web-02's 6", sealedProject, n)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := scrape(t, r.Addrs.Admin)
		for _, u := range []string{web01, web02, certHost} {
			if m.get("slsrelay_user_logins_total", "user", u) == 0 {
				t.Errorf("no slsrelay_user_logins_total{user=%q}", u)
			}
			if m.get("slsrelay_user_bytes_in_total", "user", u) == 0 {
				t.Errorf("no slsrelay_user_bytes_in_total{user=%q}", u)
			}
		}
		for _, u := range []string{web01, web02, "(unknown)"} {
			if m.get("slsrelay_user_login_failures_total", "user", u) == 0 {
				t.Errorf("no slsrelay_user_login_failures_total{user=%q}", u)
			}
		}
		if m.has("slsrelay_user_logins_total", "user", "nobody") {
			t.Error("an unknown name got a series of its own: any client could grow /metrics")
		}
	})

	t.Run("no-secrets", func(t *testing.T) {
		secrets := r.setup.secrets(t)
		checkNoSecrets(t, "the relay's log", r.Log.String(), "SASL authentication failed", secrets)
		_, body, err := httpGet(r.Addrs.Admin, "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		checkNoSecrets(t, "/metrics", body, "slsrelay_user_logins_total", secrets)
		_, status, err := httpGet(r.Addrs.Admin, "/wal/status")
		if err != nil {
			t.Fatal(err)
		}
		checkNoSecrets(t, "GET /wal/status", status, usersProject+"/"+nginx, secrets)
		raw, _ := os.ReadFile(r.setup.usersFile)
		checkNoSecrets(t, "the users file", string(raw), "stored_key", []string{web01Password, web02Password, heldSecret, sealedSecret, r.setup.walKey})
	})
}

// TestE2EUsersAuthSectionReload: a reload (what SIGHUP calls) applies the
// auth section as it now reads, inline users included: a user added
// inline logs in, and one removed loses its connection. Only an auth
// section where there was none needs a restart (the engine was built
// without users). TestOpsUsersInlineReload does it with SIGHUP and
// kafka-python.
func TestE2EUsersAuthSectionReload(t *testing.T) {
	t.Parallel()
	r := startUsersRelay(t)
	same := *r.cfg
	if got := r.Reload(&same); slices.Contains(got, "auth") {
		t.Errorf("an unchanged auth section is reported as changed: %q", got)
	}
	file, err := users.ReadFile(r.setup.usersFile)
	if err != nil {
		t.Fatal(err)
	}
	login := func(user, password string) (*kafkatest.TConn, string) {
		c := kafkatest.DialT(t, r.Addrs.Listeners["SASL_PLAINTEXT"], nil)
		return c, scramLoginRaw(t, c, engine.SCRAMSHA512, user, password)
	}
	if _, msg := login("inline-01", web01Password); msg == "" {
		t.Fatal("inline-01 logged in before it was added")
	}
	// inline-01 is web-01's entry (same password) under a name of its own,
	// in the section itself beside the users file.
	changed := *r.cfg
	changed.Auth = &users.AuthConfig{UsersFile: r.setup.usersFile, File: users.File{Users: map[string]users.User{"inline-01": file.Users[web01]}}}
	if got := r.Reload(&changed); slices.Contains(got, "auth") {
		t.Errorf("a changed auth section is reported as needing a restart: %q", got)
	}
	conn, msg := login("inline-01", web01Password)
	if msg != "" {
		t.Fatalf("inline-01, added inline, cannot log in after the reload: %s", msg)
	}
	recs := userRecs(4000, 1, "inline-01")
	if err := conn.Conn().Produce("u-nginx", 0, -1, string(recs[0].Value)); err != nil {
		t.Fatalf("inline-01 produce: %v", err)
	}
	r.waitStored(t, usersProject, "u-nginx", recs)
	// Back to the section without inline-01: its connection is closed.
	back := *r.cfg
	r.Reload(&back)
	conn.ExpectClosed()
	if _, msg := login("inline-01", web01Password); msg == "" {
		t.Fatal("inline-01, removed from the section, still logs in")
	}
	noAuth := *r.cfg
	noAuth.Auth = nil
	if got := relay.RestartOnlyChanges(&noAuth, r.cfg); !slices.Contains(got, "auth") {
		t.Errorf("an auth section where there was none is not reported as needing a restart: %q", got)
	}
}
