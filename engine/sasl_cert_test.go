package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slsrelay/slsrelay/wal"
)

// TestSSLCertificateUsers: on an SSL listener (TLS with a client CA, no
// SASL) a client certificate whose subject maps to a relay user writes as
// that user, with the held key and within its rights; a certificate the
// CA signed for a subject that is no user is refused and stores nothing.
func TestSSLCertificateUsers(t *testing.T) {
	serverTLS, clientTLS, clients := sslListenerTLS(t, "good", "other")
	goodCert, otherCert := clients[0], clients[1]
	u := heldUser(t, "cert-user", "", hostARights)
	users := testDirectory{"cert-user": u, "cert:good client": u}
	app := &MemoryAppender{}
	srv, err := New(Options{
		Listeners: []ListenerOptions{{Name: "SSL", Protocol: SSL, Bind: "127.0.0.1:0", TLS: serverTLS}},
		Users:     users,
		Logger:    testLogger(),
	}, testCatalog(), app)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	produce := func(c tls.Certificate, topic string, timeout time.Duration) error {
		cl := kafkatest.NewKgo(t, kgo.SeedBrokers(srv.Addr("SSL")), kgo.DialTLSConfig(clientTLS(c)),
			kgo.DisableIdempotentWrite(), kgo.RecordRetries(2), kgo.RetryTimeout(3*time.Second),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
	}
	stored := func(topic string) []wal.Entry {
		return app.Entries(wal.StreamKey{Project: testProject, Logstore: topic, Partition: 0})
	}
	if err := produce(goodCert, testTopic, clTimeout); err != nil {
		t.Fatalf("the mapped certificate: %v", err)
	}
	got := stored(testTopic)
	if len(got) != 1 || got[0].Credential != heldCredential {
		t.Fatalf("stored %d entries (want 1 signed with the held key)", len(got))
	}
	if err := produce(goodCert, testTopic4, clTimeout); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("a topic outside the user's rights: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	failures := userMetricsFor(unknownUser).failures.Get()
	// The relay closes the connection at once; kgo retries until the
	// deadline.
	if err := produce(otherCert, testTopic, 2*time.Second); err == nil {
		t.Fatal("a certificate of no relay user was let in")
	}
	kafkatest.DialT(t, srv.Addr("SSL"), clientTLS(otherCert)).ExpectClosed()
	if len(stored(testTopic)) != 1 || len(stored(testTopic4)) != 0 {
		t.Fatal("a refused client stored something")
	}
	if userMetricsFor(unknownUser).failures.Get() == failures {
		t.Fatal("the refused certificate was not counted")
	}
}

// sslListenerTLS is an SSL listener's TLS configuration: a self-signed
// server certificate and, as its client_ca, one CA per name in clients;
// it returns a client's configuration for a certificate (trusting the
// server's) and the client certificate each CA signed ("<name> client"),
// in that order.
func sslListenerTLS(t *testing.T, clients ...string) (*tls.Config, func(tls.Certificate) *tls.Config, []tls.Certificate) {
	t.Helper()
	dir := t.TempDir()
	files, err := EnsureSelfSigned(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var cas []byte
	var certs []tls.Certificate
	for _, name := range clients {
		ca, cert := clientCA(t, name)
		cas, certs = append(cas, ca...), append(certs, cert)
	}
	caFile := filepath.Join(dir, "clients.pem")
	if err := os.WriteFile(caFile, cas, 0o600); err != nil {
		t.Fatal(err)
	}
	reloader, err := NewCertReloader(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := reloader.Config(caFile)
	if err != nil {
		t.Fatal(err)
	}
	serverCA, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serverCA)
	clientTLS := func(c tls.Certificate) *tls.Config {
		return &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{c}}
	}
	return serverTLS, clientTLS, certs
}
