package users

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/wal"
)

// TestDirectoryWithServer wires a Directory into an engine.Server as the
// daemon does: a user of the file logs in with SCRAM-SHA-512 and writes
// with the held key; removed from the file, Reload then DropRevokedUsers
// close its connection and its next login fails.
func TestDirectoryWithServer(t *testing.T) {
	path := writeUsers(t, func(f *File) {
		if err := f.Add("web-01", "pw-web-01", AddOptions{Project: "p1", Key: "prod", Topics: []string{"nginx"}}); err != nil {
			t.Fatal(err)
		}
	})
	dir, err := Open(Options{Path: path, LookupEnv: env(map[string]string{"HELD_SECRET": testSecret})})
	if err != nil {
		t.Fatal(err)
	}
	app := &engine.MemoryAppender{}
	srv, err := engine.New(engine.Options{
		Listeners: []engine.ListenerOptions{{Name: "sasl", Protocol: engine.SASLPlaintext, Bind: "127.0.0.1:0",
			Mechanisms: []string{engine.SCRAMSHA256, engine.SCRAMSHA512}}},
		Users:  dir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, &engine.StaticCatalog{Projects: map[string]map[string]int32{"p1": {"nginx": 1}}, Keys: map[string]string{testAKID: testSecret}}, app)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr("sasl")), kgo.SASL(scram.Auth{User: "web-01", Pass: "pw-web-01"}.AsSha512Mechanism()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(2), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "nginx", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	got := app.Entries(wal.StreamKey{Project: "p1", Logstore: "nginx"})
	if len(got) != 1 || got[0].Credential != (wal.Credential{AccessKeyID: testAKID, AccessKeySecret: testSecret}) {
		t.Fatalf("stored %d entries, want 1 with the held key", len(got))
	}

	f, _ := ReadFile(path)
	f.Remove("web-01")
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	if err := dir.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := srv.DropRevokedUsers(); n == 0 { // kgo has two: metadata and produce
		t.Fatal("DropRevokedUsers closed no connection")
	}
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "nginx", Value: []byte("after")}).FirstErr()
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("after the removal: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if n := len(app.Entries(wal.StreamKey{Project: "p1", Logstore: "nginx"})); n != 1 {
		t.Fatalf("%d entries after the removal, want still 1", n)
	}
}
