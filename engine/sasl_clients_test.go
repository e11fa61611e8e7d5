package engine

// Relay users end to end: real clients (franz-go, sarama with its SCRAM
// hook as Beats sets it, kcat/librdkafka) log in with SCRAM-SHA-256/512 or
// PLAIN against a relay user's password, and their records are stored
// under the user's Project and the AccessKey the relay holds. Wrong
// passwords, unknown users and topics outside a user's rights get Kafka's
// errors and store nothing; a reload that removes a user closes its
// connection. kafka-python's are in clients_kafkapython_test.go.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/slsrelay/slsrelay/wal"
)

// swapDirectory is a UserDirectory whose users a test replaces, as a
// reload does.
type swapDirectory struct{ cur atomic.Pointer[testDirectory] }

func (d *swapDirectory) set(users ...*RelayUser) {
	m := testDirectory{}
	for _, u := range users {
		m[u.Name] = u
	}
	d.cur.Store(&m)
}
func (d *swapDirectory) User(name string) (*RelayUser, bool) { return d.cur.Load().User(name) }
func (d *swapDirectory) CertUser(c *x509.Certificate) (*RelayUser, bool) {
	return d.cur.Load().CertUser(c)
}

// The relay users of these tests: hostA may write testTopic only, hostB
// every Logstore named test-logstore-*.
const (
	hostA, hostAPassword = "host-a", "pw-a-3c1d"
	hostB, hostBPassword = "host-b", "pw-b-98e2"
)

var (
	heldCredential = wal.Credential{AccessKeyID: testHeldAKID, AccessKeySecret: testHeldSecret}
	hostARights    = &TopicRights{Names: []string{testTopic}}
	hostBRights    = &TopicRights{Prefixes: []string{"test-logstore-"}}
)

// heldUser is testUser signing with the held key.
func heldUser(t testing.TB, name, password string, rights *TopicRights) *RelayUser {
	u := testUser(t, name, password, rights)
	u.Principal.Credential = heldCredential
	return u
}

// userRelay is a clRelay whose SASL listeners offer PLAIN and both SCRAMs
// to relay users (PLAIN against their passwords on SASL_SSL only).
type userRelay struct {
	*clRelay
	dir  *swapDirectory
	logs *kafkatest.LockedBuffer
}

func startUserRelay(t *testing.T) *userRelay {
	t.Helper()
	dir := &swapDirectory{}
	dir.set(heldUser(t, hostA, hostAPassword, hostARights), heldUser(t, hostB, hostBPassword, hostBRights))
	logs := &kafkatest.LockedBuffer{}
	r := startRelayAppender(t, nil, func(o *Options) {
		o.Users = dir
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		for i := range o.Listeners {
			if o.Listeners[i].Protocol != Plaintext {
				o.Listeners[i].Mechanisms = []string{PLAIN, SCRAMSHA256, SCRAMSHA512}
			}
			if o.Listeners[i].Protocol == SASLSSL {
				o.Listeners[i].Plain = PlainEither
			}
		}
	})
	return &userRelay{clRelay: &clRelay{decoded: map[wal.StreamKey]*clStream{}, testRelay: r}, dir: dir, logs: logs}
}

// checkHeldKey fails unless every entry of tag in logstore is signed with
// the held key: the user never sent it.
func (r *userRelay) checkHeldKey(t testing.TB, logstore string, partitions int32, tag string) {
	t.Helper()
	for p := int32(0); p < partitions; p++ {
		for _, e := range r.caseEntries(t, logstore, p, tag) {
			if e.Credential != heldCredential {
				t.Fatalf("%s[%d] entry %d signed with %q, want the held key", logstore, p, e.index, e.Credential.AccessKeyID)
			}
		}
	}
}

// kgoUser returns franz-go options logging in as user through l with mech.
func (r *userRelay) kgoUser(l clListener, m sasl.Mechanism) []kgo.Opt {
	opts := clKgoOpts(r.clRelay, clListener{name: l.name, tls: l.tls}, "")
	if !l.tls {
		opts[0] = kgo.SeedBrokers(r.saslText)
	}
	return append(opts, kgo.SASL(m), kgo.ClientID("user-test"))
}

func scramMech(mechanism, user, password string) sasl.Mechanism {
	a := scram.Auth{User: user, Pass: password}
	if mechanism == SCRAMSHA512 {
		return a.AsSha512Mechanism()
	}
	return a.AsSha256Mechanism()
}

// produceFranz sends sent to topic as user and returns the first error.
func (r *userRelay) produceFranz(t *testing.T, opts []kgo.Opt, topic string, sent []clSent) error {
	t.Helper()
	cl := kafkatest.NewKgo(t, append(opts, kgo.DisableIdempotentWrite(), kgo.RecordRetries(2))...)
	ctx, cancel := context.WithTimeout(context.Background(), clTimeout)
	defer cancel()
	return cl.ProduceSync(ctx, clKgoRecords(topic, sent, true)...).FirstErr()
}

// deliversAs produces records tagged with the test's name to topic with
// opts and checks they are all stored, signed with the held key.
func (r *userRelay) deliversAs(t *testing.T, opts []kgo.Opt, topic string, partitions int32) {
	t.Helper()
	sent := clMakeRecords(t.Name(), 12, partitions, time.Now())
	if err := r.produceFranz(t, opts, topic, sent); err != nil {
		t.Fatalf("produce: %v", err)
	}
	r.waitCase(t, topic, partitions, t.Name(), len(sent))
	r.checkHeldKey(t, topic, partitions, t.Name())
}

func TestRelayUsers(t *testing.T) {
	r := startUserRelay(t)
	logins := func(user string) uint64 { return userMetricsFor(user).logins.Get() }

	t.Cleanup(func() {
		if t.Failed() {
			t.Log(r.logs.String())
		}
	})
	t.Run("clients", func(t *testing.T) {
		t.Run("franz", func(t *testing.T) {
			for _, l := range []clListener{clSASLSSL, clSASLText} {
				for _, mech := range []string{SCRAMSHA256, SCRAMSHA512} {
					t.Run(l.name+"/"+mech, func(t *testing.T) {
						t.Parallel()
						r.deliversAs(t, r.kgoUser(l, scramMech(mech, hostB, hostBPassword)), testTopic4, 4)
					})
				}
			}
			t.Run("PLAIN-user-password/SASL_SSL", func(t *testing.T) {
				t.Parallel()
				r.deliversAs(t, r.kgoUser(clSASLSSL, plain.Auth{User: hostA, Pass: hostAPassword}.AsMechanism()), testTopic, 2)
			})
			t.Run("PLAIN-accesskey/SASL_SSL", func(t *testing.T) {
				t.Parallel()
				sent := clMakeRecords(t.Name(), 6, 2, time.Now())
				if err := r.produceFranz(t, clKgoOpts(r.clRelay, clSASLSSL, clPassword), testTopic, sent); err != nil {
					t.Fatalf("the SLS-compatible PLAIN login stopped working: %v", err)
				}
				r.waitCase(t, testTopic, 2, t.Name(), len(sent))
			})
		})
		t.Run("sarama", func(t *testing.T) {
			for _, l := range []clListener{clSASLSSL, clSASLText} {
				for _, hs := range []int16{sarama.SASLHandshakeV0, sarama.SASLHandshakeV1} {
					for _, mech := range []string{SCRAMSHA256, SCRAMSHA512} {
						t.Run(fmt.Sprintf("%s/handshake-v%d/%s", l.name, hs, mech), func(t *testing.T) {
							t.Parallel()
							sent := clMakeRecords(t.Name(), 8, 2, time.Now())
							cfg := r.saramaUser(l, hs, mech, hostA, hostAPassword)
							if err := clSaramaSend(t, r.addr(l), cfg, false, clSaramaMessages(testTopic, sent, cfg.Version)); err != nil {
								t.Fatalf("produce: %v", err)
							}
							r.waitCase(t, testTopic, 2, t.Name(), len(sent))
							r.checkHeldKey(t, testTopic, 2, t.Name())
						})
					}
				}
			}
		})
		t.Run("kcat", func(t *testing.T) {
			clKcat(t)
			for _, l := range []clListener{clSASLSSL, clSASLText} {
				for _, mech := range []string{SCRAMSHA256, SCRAMSHA512} {
					t.Run(l.name+"/"+mech, func(t *testing.T) {
						t.Parallel()
						sent := clMakeRecords(t.Name(), 8, 1, time.Now())
						args := append(r.kcatUser(l, mech, hostB, hostBPassword), "-t", testTopic4, "-p", "1")
						for i := range sent {
							sent[i].Partition = 1
						}
						if out, err := clKcatProduce(t, args, sent); err != nil {
							t.Fatalf("kcat: %v\n%s", err, out)
						}
						r.waitCase(t, testTopic4, 4, t.Name(), len(sent))
						r.checkHeldKey(t, testTopic4, 4, t.Name())
					})
				}
			}
		})
	})
	if logins(hostA) == 0 || logins(hostB) == 0 {
		t.Fatalf("logins counted: %s %d, %s %d", hostA, logins(hostA), hostB, logins(hostB))
	}
	if userMetricsFor(hostB).bytesIn.Get() == 0 {
		t.Fatal("no bytes counted for host-b")
	}

	t.Run("refusals", func(t *testing.T) {
		// Each refusal: the error the client reports, and nothing stored.
		f := func(t *testing.T, opts []kgo.Opt, topic string, want *kerr.Error) {
			t.Helper()
			sent := clMakeRecords(t.Name(), 3, 1, time.Now())
			err := r.produceFranz(t, opts, topic, sent)
			if !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
			time.Sleep(20 * time.Millisecond)
			if n := r.caseCount(t, topic, 4, t.Name()); n != 0 {
				t.Fatalf("%d records stored", n)
			}
		}
		for _, mech := range []string{SCRAMSHA256, SCRAMSHA512} {
			t.Run(mech+"/wrong-password", func(t *testing.T) {
				f(t, r.kgoUser(clSASLText, scramMech(mech, hostA, "not-"+hostAPassword)), testTopic, kerr.SaslAuthenticationFailed)
			})
			t.Run(mech+"/unknown-user", func(t *testing.T) {
				f(t, r.kgoUser(clSASLText, scramMech(mech, "nobody", hostAPassword)), testTopic, kerr.SaslAuthenticationFailed)
			})
			t.Run(mech+"/topic-outside-rights", func(t *testing.T) {
				f(t, r.kgoUser(clSASLSSL, scramMech(mech, hostA, hostAPassword)), testTopic4, kerr.TopicAuthorizationFailed)
			})
		}
		t.Run("PLAIN-user-password/SASL_SSL/wrong", func(t *testing.T) {
			f(t, r.kgoUser(clSASLSSL, plain.Auth{User: hostA, Pass: "wrong"}.AsMechanism()), testTopic, kerr.SaslAuthenticationFailed)
		})
		t.Run("PLAIN-user-password/SASL_PLAINTEXT-is-accesskeys-only", func(t *testing.T) {
			f(t, r.kgoUser(clSASLText, plain.Auth{User: hostA, Pass: hostAPassword}.AsMechanism()), testTopic, kerr.SaslAuthenticationFailed)
		})
		t.Run("sarama/wrong-password", func(t *testing.T) {
			for _, hs := range []int16{sarama.SASLHandshakeV0, sarama.SASLHandshakeV1} {
				cfg := r.saramaUser(clSASLText, hs, SCRAMSHA512, hostA, "wrong")
				err := clSaramaSend(t, r.saslText, cfg, false, clSaramaMessages(testTopic, clMakeRecords(t.Name(), 1, 1, time.Now()), cfg.Version))
				if err == nil {
					t.Fatalf("handshake v%d: a wrong password produced", hs)
				}
			}
		})
		t.Run("kcat/wrong-password", func(t *testing.T) {
			args := append(r.kcatUser(clSASLSSL, SCRAMSHA512, hostA, "wrong"), "-t", testTopic, "-p", "0", "-X", "message.timeout.ms=3000")
			out, err := clKcatProduce(t, args, clMakeRecords(t.Name(), 1, 1, time.Now()))
			if err == nil || !strings.Contains(out, "uthentication") {
				t.Fatalf("kcat with a wrong password: %v\n%s", err, out)
			}
		})
		// Below the clients: Produce straight to a Logstore outside the
		// rights (kgo stops at Metadata), and Metadata for all topics.
		t.Run("raw-produce-and-metadata", func(t *testing.T) {
			c := kafkatest.DialT(t, r.saslText, nil)
			if msg := scramLogin(t, c, SCRAMSHA256, hostA, hostAPassword); msg != "" {
				t.Fatalf("login: %s", msg)
			}
			resp := c.RoundTrip(kafkatest.ProduceRequest(9, 1, testTopic4, map[int32][]byte{0: kafkatest.RecordBatch(t.Name() + " #0")})).(*kmsg.ProduceResponse)
			if got := kafkatest.PartitionErrors(resp)[0]; got != kerr.TopicAuthorizationFailed.Code {
				t.Fatalf("produce outside the rights: error %d, want TOPIC_AUTHORIZATION_FAILED", got)
			}
			if n := r.caseCount(t, testTopic4, 4, t.Name()); n != 0 {
				t.Fatalf("%d records stored", n)
			}
			mreq := kmsg.NewPtrMetadataRequest()
			mreq.Version = 9
			meta := c.RoundTrip(mreq).(*kmsg.MetadataResponse)
			if len(meta.Topics) != 1 || *meta.Topics[0].Topic != testTopic {
				t.Fatalf("all topics for host-a: %d listed, want only %s", len(meta.Topics), testTopic)
			}
		})
		if userMetricsFor(hostA).failures.Get() == 0 || userMetricsFor(unknownUser).failures.Get() == 0 {
			t.Fatal("failed logins were not counted per user")
		}
		// The wrong password and the unknown user are told the same.
		msg := func(user, password string) string {
			c := kafkatest.DialT(t, r.saslText, nil)
			return scramLogin(t, c, SCRAMSHA256, user, password)
		}
		if a, b := msg(hostA, "wrong"), msg("nobody", "wrong"); a != b || a == "" {
			t.Fatalf("wrong password told %q, unknown user told %q", a, b)
		}
	})

	t.Run("reload-removes-user", func(t *testing.T) {
		// A raw connection logged in as host-b, and a franz-go client.
		raw := kafkatest.DialT(t, r.saslText, nil)
		if msg := scramLogin(t, raw, SCRAMSHA512, hostB, hostBPassword); msg != "" {
			t.Fatalf("host-b login: %s", msg)
		}
		cl := kafkatest.NewKgo(t, append(r.kgoUser(clSASLText, scramMech(SCRAMSHA512, hostB, hostBPassword)), kgo.DisableIdempotentWrite(), kgo.RecordRetries(2))...)
		ctx, cancel := context.WithTimeout(context.Background(), clTimeout)
		defer cancel()
		if err := cl.ProduceSync(ctx, clKgoRecords(testTopic4, clMakeRecords(t.Name(), 2, 1, time.Now()), true)...).FirstErr(); err != nil {
			t.Fatalf("produce before the reload: %v", err)
		}
		r.dir.set(heldUser(t, hostA, hostAPassword, hostARights)) // host-b removed
		if n := r.srv.DropRevokedUsers(); n < 2 {
			t.Fatalf("DropRevokedUsers closed %d connections, want host-b's 2", n)
		}
		raw.ExpectClosed()
		err := cl.ProduceSync(ctx, clKgoRecords(testTopic4, clMakeRecords(t.Name()+"-after", 2, 1, time.Now()), true)...).FirstErr()
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("after the reload: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
		if n := r.caseCount(t, testTopic4, 4, t.Name()+"-after"); n != 0 {
			t.Fatalf("%d records stored after the removal", n)
		}
		// host-a, unchanged, keeps working.
		if err := r.produceFranz(t, r.kgoUser(clSASLText, scramMech(SCRAMSHA256, hostA, hostAPassword)), testTopic, clMakeRecords(t.Name()+"-a", 1, 1, time.Now())); err != nil {
			t.Fatalf("host-a after the reload: %v", err)
		}
	})

	// No secret reaches the logs or the metrics.
	var m bytes.Buffer
	metrics.WritePrometheus(&m, false)
	out := r.logs.String() + m.String()
	if !strings.Contains(r.logs.String(), "SASL authentication failed") {
		t.Fatal("the failed logins were not logged: the secret check below looks at nothing")
	}
	secrets := []string{hostAPassword, hostBPassword, testHeldSecret}
	for _, u := range []*RelayUser{heldUser(t, hostA, hostAPassword, nil), heldUser(t, hostB, hostBPassword, nil)} {
		for _, c := range u.SCRAM {
			secrets = append(secrets, base64.StdEncoding.EncodeToString(c.StoredKey), base64.StdEncoding.EncodeToString(c.ServerKey))
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("a secret (%d bytes) appears in the logs or metrics", len(s))
		}
	}
}

// saramaUser is clSaramaConfig logging in as user with SCRAM, as Beats
// configures sarama (Version 2.1.0, a SCRAM client from its generator);
// handshake v0 goes without ApiVersions as in the Beats, v1 with it (see
// clSaramaConfig).
func (r *userRelay) saramaUser(l clListener, handshake int16, mech, user, password string) *sarama.Config {
	cfg := clSaramaConfig(r.clRelay, sarama.V2_1_0_0, clSaramaMode{l: l, sasl: handshake}, "")
	cfg.Net.SASL.Mechanism = sarama.SASLMechanism(mech)
	cfg.Net.SASL.User, cfg.Net.SASL.Password = user, password
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramTestClient{mechanism: mech} }
	return cfg
}

// kcatUser returns kcat's arguments logging in as user with mech.
func (r *userRelay) kcatUser(l clListener, mech, user, password string) []string {
	args := clKcatArgs(r.clRelay, clListener{name: l.name, tls: l.tls}, "")
	proto := "SASL_PLAINTEXT"
	if l.tls {
		proto = "SASL_SSL"
	}
	for i := range args {
		if strings.HasPrefix(args[i], "security.protocol=") {
			args[i] = "security.protocol=" + proto
		}
		if args[i] == r.plain {
			args[i] = r.addr(l)
		}
	}
	return append(args, "-X", "sasl.mechanisms="+mech, "-X", "sasl.username="+user, "-X", "sasl.password="+password)
}

// scramLogin runs a SCRAM exchange over SaslHandshake v1 + SaslAuthenticate
// with scramTestClient and returns the error message of the step that
// failed ("" if the login succeeded).
func scramLogin(t testing.TB, c *kafkatest.TConn, mech, user, password string) string {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, mech
	if r := c.RoundTrip(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		t.Fatalf("handshake error %d", r.ErrorCode)
	}
	cl := &scramTestClient{mechanism: mech}
	cl.Begin(user, password, "")
	challenge := ""
	for !cl.Done() {
		msg, err := cl.Step(challenge)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		if cl.Done() {
			return ""
		}
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.Version = 1
		auth.SASLAuthBytes = []byte(msg)
		resp := c.RoundTrip(auth).(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != 0 {
			if resp.ErrorMessage == nil {
				return fmt.Sprint("error ", resp.ErrorCode)
			}
			return *resp.ErrorMessage
		}
		challenge = string(resp.SASLAuthBytes)
	}
	return ""
}
