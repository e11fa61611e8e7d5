package engine

import (
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
)

// Names the embedded default and every test serve.
const (
	testProject = "test-project-1"
	testAKID    = "demo-akid"
	testSecret  = "demo-aksecret"
	testTopic   = "test-logstore-1" // 2 partitions
	testTopic4  = "test-logstore-2" // 4 partitions
	// The AccessKey only the relay holds, for relay users (sasl_*_test.go).
	testHeldAKID   = "held-akid"
	testHeldSecret = "held-secret-7f3e9a"
)

func testCatalog() *StaticCatalog {
	return &StaticCatalog{
		Projects: map[string]map[string]int32{testProject: {testTopic: 2, testTopic4: 4}},
		Keys:     map[string]string{testAKID: testSecret, testHeldAKID: testHeldSecret},
	}
}

// testRelay is a Server on loopback with a PLAINTEXT and a SASL_SSL
// listener, a static catalog and an in-memory appender.
type testRelay struct {
	srv      *Server
	app      *MemoryAppender
	plain    string // PLAINTEXT address
	saslSSL  string // SASL_SSL address
	saslText string // SASL_PLAINTEXT address
	tls      *tls.Config
	caFile   string // the CA clients trust, for kcat
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startRelay(t testing.TB, modify ...func(*Options)) *testRelay {
	t.Helper()
	return startRelayAppender(t, nil, modify...)
}

// selfSignedTLS is a server TLS config with a new self-signed certificate
// for localhost and 127.0.0.1, and the certificate's files.
func selfSignedTLS(t testing.TB) (SelfSignedFiles, *tls.Config) {
	t.Helper()
	files, err := EnsureSelfSigned(t.TempDir(), []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := NewCertReloader(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := certs.Config("")
	if err != nil {
		t.Fatal(err)
	}
	return files, serverTLS
}

// startRelayAppender is startRelay with the MemoryAppender wrapped (a slow
// or observed store); wrap may be nil.
func startRelayAppender(t testing.TB, wrap func(*MemoryAppender) Appender, modify ...func(*Options)) *testRelay {
	t.Helper()
	files, serverTLS := selfSignedTLS(t)
	clientTLS, err := kafkatest.ClientTLS(files.CA)
	if err != nil {
		t.Fatal(err)
	}

	principal := &Principal{Project: testProject, Credential: wal.Credential{AccessKeyID: testAKID, AccessKeySecret: testSecret}}
	opts := Options{
		Listeners: []ListenerOptions{
			{Name: "PLAINTEXT", Protocol: Plaintext, Bind: "127.0.0.1:0", Principal: principal},
			{Name: "SASL_SSL", Protocol: SASLSSL, Bind: "127.0.0.1:0", TLS: serverTLS},
			{Name: "SASL_PLAINTEXT", Protocol: SASLPlaintext, Bind: "127.0.0.1:0"},
		},
		EventLoops: 2,
		Logger:     testLogger(),
	}
	if !testing.Verbose() {
		// Kept, and shown if the test fails: why a client's connection
		// was closed or refused is in it.
		log := &kafkatest.LockedBuffer{}
		opts.Logger = slog.New(slog.NewTextHandler(log, nil))
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("relay log (its last 64 KiB):\n%s", log.Tail(64<<10))
			}
		})
	}
	for _, m := range modify {
		m(&opts)
	}
	app := &MemoryAppender{}
	var a Appender = app
	if wrap != nil {
		a = wrap(app)
	}
	srv, err := New(opts, testCatalog(), a)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &testRelay{
		srv: srv, app: app,
		plain: srv.Addr("PLAINTEXT"), saslSSL: srv.Addr("SASL_SSL"), saslText: srv.Addr("SASL_PLAINTEXT"),
		tls:    clientTLS,
		caFile: files.CA,
	}
}

// records returns every entry a topic's partitions received, in order.
func (r *testRelay) entries(logstore string, partition int32) []wal.Entry {
	return r.app.Entries(wal.StreamKey{Project: testProject, Logstore: logstore, Partition: partition})
}
