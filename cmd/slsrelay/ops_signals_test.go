package main

// Operating it, on the real binary: `slsrelay -config FILE` built from this
// package and run as a child process, as an init system runs it.
//
//   - SIGHUP swaps the TLS certificate under a connected client and changes
//     the log level;
//   - SIGTERM under load exits 0 within the grace period and loses nothing
//     that was acknowledged; a SASL_SSL client active during the drain
//     does not keep the process from exiting;
//   - the log (stderr) never carries the AccessKeySecret, right or wrong.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
)

// opsGrace bounds how long a child may take to stop on SIGTERM: the
// binary's own grace period for requests in flight (shutdownGrace) plus
// the time to stop writers and close the WAL.
const opsGrace = shutdownGrace + 5*time.Second

// childConfig is the child's configuration file: relaytest's (that is
// configs/local.yaml) on loopback ports picked before the child starts,
// with the SASL_SSL listener's certificate files, a short retry interval
// and linger. It is written as YAML from the relay's own Config.
type childConfig struct{ *relay.Config }

func newChildConfig(t testing.TB, dir, cert, key string) childConfig {
	t.Helper()
	cfg := relaytest.Config(t)
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Listeners[0].Bind, cfg.Listeners[1].Bind = freeAddr(t), freeAddr(t)
	cfg.Listeners[1].TLSFiles = &relay.TLSConfig{Cert: cert, Key: key}
	cfg.Admin.Listen = freeAddr(t)
	cfg.SLS.StandIn.Listen = freeAddr(t)
	cfg.SLS.RetryInterval = 100 * time.Millisecond
	cfg.SLS.Linger = 20 * time.Millisecond
	return childConfig{cfg}
}

// sendTo makes the child deliver to a stand-in at endpoint (plain http)
// instead of its own.
func (c childConfig) sendTo(endpoint string) {
	c.SLS.StandIn, c.SLS.Endpoint = nil, "http://"+endpoint
}

func (c childConfig) plain() string { return c.Listeners[0].Bind }
func (c childConfig) sasl() string  { return c.Listeners[1].Bind }
func (c childConfig) admin() string { return c.Admin.Listen }

func (c childConfig) write(t testing.TB, path string) {
	t.Helper()
	relaytest.WriteConfig(t, path, c.Config)
}

// selfSigned makes a CA and a server certificate for localhost/127.0.0.1
// in dir.
func selfSigned(t testing.TB, dir string) engine.SelfSignedFiles {
	t.Helper()
	f, err := engine.EnsureSelfSigned(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// leafDER returns the first certificate of a PEM file.
func leafDER(t testing.TB, certFile string) []byte {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM block in %s", certFile)
	}
	return blk.Bytes
}

func clientTLS(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// handshake opens a TLS connection to addr trusting pool and returns the
// certificate the server presented.
func handshake(addr string, pool *x509.CertPool) ([]byte, error) {
	c, err := kafkatest.Dial(addr, clientTLS(pool))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Conn.(*tls.Conn).ConnectionState().PeerCertificates[0].Raw, nil
}

// isUnknownAuthority reports whether err is a certificate signed by a CA
// the client does not trust.
func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

// TestOpsBinary runs the real binary (with -race, built with the race
// detector, which stops the child at the first race).
func TestOpsBinary(t *testing.T) {
	t.Parallel()
	bin := slsrelayBinary(t)
	t.Run("SIGHUP", func(t *testing.T) { testSIGHUP(t, bin) })
	t.Run("SIGTERM", func(t *testing.T) { testSIGTERM(t, bin) })
}

// testSIGHUP: a client connected over SASL_SSL with the first CA keeps
// working after the certificate files are replaced by ones from a new CA
// and SIGHUP is sent; new connections get the new certificate (the new CA
// verifies it, the old one does not); the log level goes from info to
// debug in the same reload. The child runs its own stand-in, as
// configs/local.yaml does.
func testSIGHUP(t *testing.T, bin string) {
	dir := t.TempDir()
	first, second := selfSigned(t, filepath.Join(dir, "ca1")), selfSigned(t, filepath.Join(dir, "ca2"))
	poolA, poolB := certPool(t, first.CA), certPool(t, second.CA)
	tlsDir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := newChildConfig(t, dir, filepath.Join(tlsDir, "server.crt"), filepath.Join(tlsDir, "server.key"))
	cfg.Limits.MaxMessageBytes = 4096
	copyFile(t, first.Cert, cfg.Listeners[1].TLSFiles.Cert)
	copyFile(t, first.Key, cfg.Listeners[1].TLSFiles.Key)
	cfgPath := filepath.Join(dir, "slsrelay.yaml")
	cfg.write(t, cfgPath)

	c := startChild(t, "slsrelay", bin, cfgPath, childEnv())
	c.waitReady(t, cfg.admin(), 30*time.Second)
	const store = "test-logstore-1"

	// Before: the first CA verifies the listener, the second does not.
	if _, err := handshake(cfg.sasl(), poolA); err != nil {
		t.Fatalf("TLS with the first CA before the reload: %v", err)
	}
	if _, err := handshake(cfg.sasl(), poolB); !isUnknownAuthority(err) {
		t.Fatalf("TLS with the second CA before the reload: %v, want an unknown authority", err)
	}
	// The connection that must survive the reload.
	old, err := kafkatest.Dial(cfg.sasl(), clientTLS(poolA))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Authenticate(relaytest.Project, relaytest.Password); err != nil {
		t.Fatalf("SASL: %v", err)
	}
	if err := old.Produce(store, 0, -1, e2eID(1)+" before the reload"); err != nil {
		t.Fatalf("Produce before the reload: %v", err)
	}
	// At info, a rejected batch logs nothing (its line is at debug).
	plainConn, err := kafkatest.Dial(cfg.plain(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plainConn.Close()
	tooBig := e2eID(900) + strings.Repeat("z", 5000)
	if err := plainConn.Produce(store, 0, 1, tooBig); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("a batch over max_message_bytes: %v, want MESSAGE_TOO_LARGE", err)
	}

	// Replace the files as a certificate manager would, change the level,
	// and SIGHUP.
	copyFile(t, second.Cert, cfg.Listeners[1].TLSFiles.Cert)
	copyFile(t, second.Key, cfg.Listeners[1].TLSFiles.Key)
	cfg.Log.Level = "debug"
	cfg.write(t, cfgPath)
	if n := len(c.stderr.lines("level=DEBUG")); n != 0 {
		t.Errorf("%d debug lines at level info, before the reload", n)
	}
	reloads := len(c.stderr.lines("msg=reloaded"))
	sent := time.Now()
	c.signal(t, syscall.SIGHUP)
	line := c.stderr.wait(t, 10*time.Second, reloads, "msg=reloaded")
	t.Logf("reloaded %v after SIGHUP: %s", time.Since(sent).Round(time.Millisecond), line)
	if !strings.Contains(line, "log_level=debug") {
		t.Errorf("the reload line does not name the new level: %s", line)
	}
	if ls := c.stderr.lines("reload:"); len(ls) > 0 {
		t.Errorf("the reload reported a problem: %q", ls)
	}

	// The connection made before the reload still works …
	if err := old.Produce(store, 1, -1, e2eID(2)+" after the reload, same connection"); err != nil {
		t.Errorf("Produce on the connection made before the reload: %v", err)
	}
	// … while new connections get the new certificate.
	der, err := handshake(cfg.sasl(), poolB)
	switch {
	case err != nil:
		t.Errorf("TLS with the new CA after the reload: %v", err)
	case !bytes.Equal(der, leafDER(t, second.Cert)):
		t.Errorf("after the reload the listener presents a certificate that is not the new server.crt")
	}
	if _, err := handshake(cfg.sasl(), poolA); !isUnknownAuthority(err) {
		t.Errorf("TLS with the old CA after the reload: %v, want an unknown authority", err)
	}
	// A real client connecting now, trusting the new CA, produces.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.sasl()), kgo.DialTLSConfig(clientTLS(poolB)),
		kgo.SASL(plain.Auth{User: relaytest.Project, Pass: relaytest.Password}.AsMechanism()),
		kgo.DialTimeout(5*time.Second), kgo.RetryTimeout(15*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: store, Partition: 0, Value: []byte(e2eID(3) + " new client, new CA")}).FirstErr()
	cancel()
	cl.Close()
	if err != nil {
		t.Errorf("a kgo client trusting the new CA: %v", err)
	}

	// The new level applies: the same rejected batch now logs at debug.
	if err := plainConn.Produce(store, 0, 1, tooBig); !errors.Is(err, kerr.MessageTooLarge) {
		t.Errorf("a batch over max_message_bytes: %v, want MESSAGE_TOO_LARGE", err)
	}
	c.stderr.wait(t, 5*time.Second, 0, "level=DEBUG", `msg="rejected batch"`)

	// At debug too, a wrong or malformed password is refused without
	// being logged.
	wrong, err := kafkatest.Dial(cfg.sasl(), clientTLS(poolB))
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.Authenticate(relaytest.Project, relaytest.AKID+"#wrong-secret-4711"); err != nil {
		t.Errorf("SASL with a wrong secret: %v, want authenticated (refused per topic)", err)
	} else if err := wrong.Produce(store, 0, -1, e2eID(901)+" wrong key"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("Produce with a wrong secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	wrong.Close()
	if wrong, err = kafkatest.Dial(cfg.sasl(), clientTLS(poolB)); err != nil {
		t.Fatal(err)
	}
	if err := wrong.Authenticate(relaytest.Project, "malformed-secret-4711"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("SASL with a password without '#': %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	wrong.Close()
	c.stderr.wait(t, 5*time.Second, 0, `msg="SASL authentication failed"`)

	// What the clients were told was stored reached the child's stand-in.
	sc := &sls.Client{Endpoint: "slsfake.local:" + portOf(cfg.SLS.StandIn.Listen), AccessKeyID: relaytest.AKID, AccessKeySecret: relaytest.Secret,
		HTTPClient: slsfake.NewHTTPClient(cfg.SLS.StandIn.Listen, "slsfake.local")}
	reader := &testRelay{sls: sc}
	want := []string{e2eID(1), e2eID(2), e2eID(3)}
	var got map[string][]pulled
	waitFor(t, 20*time.Second, fmt.Sprintf("%v in the child's stand-in", want), func() bool {
		got = byID(reader.pullAll(t, store))
		for _, id := range want {
			if len(got[id]) == 0 {
				return false
			}
		}
		return true
	})
	if len(got[e2eID(900)]) > 0 {
		t.Errorf("the rejected batch was delivered")
	}

	c.signal(t, syscall.SIGTERM)
	code, ok := c.exited(opsGrace)
	if !ok || code != 0 {
		t.Errorf("after SIGTERM: exited %v, code %d; want exit 0 within %v", ok, code, opsGrace)
	}
	c.checkNoSecret(t, "slsrelay", relaytest.Secret)
	c.checkNoSecret(t, "slsrelay", "wrong-secret-4711")
	c.checkNoSecret(t, "slsrelay", "malformed-secret-4711")
	if n := len(c.stderr.lines("level=DEBUG")); n == 0 {
		t.Errorf("no debug line at all after the reload to debug")
	}
}

func portOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	return addr[i+1:]
}

// testSIGTERM: producers write continuously (franz-go, acks=1 over
// PLAINTEXT and acks=-1 idempotent over SASL_SSL, each record with a unique
// id) while the child gets SIGTERM. The child must exit 0 within the grace
// period, and every acknowledged id must be either delivered to SLS or still
// in the WAL after the stop, and delivered after a restart on the same
// data_dir.
//
// Design: the stand-in runs in the test process, not in the child, so what
// was delivered outlives the child and can be compared with what the WAL
// still holds. The configuration has no setting for the SDK's dialer (the stand-in's
// SDK endpoint is a host name, slsfake.local, that only its custom dialer
// resolves), so the child reaches it the way a relay behind a proxy reaches
// SLS: sls.endpoint names the stand-in's endpoint and HTTP_PROXY in the
// child's environment points at the stand-in, which serves the proxied
// requests (absolute URLs) as it serves direct ones. The writers' default
// HTTP client honours HTTP_PROXY, as Go's default transport does.
//
// Between the two runs the test opens the WAL itself (with the key the
// first run generated at <data_dir>/wal.key) and reads every entry past
// each stream's committed position. The writers are paced to 20 kB/s per
// shard in LogGroups of at most 100 logs (sls.shard_bytes_per_sec,
// sls.max_log_group_logs), so delivery runs all along but falls behind the
// producers: at SIGTERM some acked ids are delivered and many are only in
// the WAL, and both halves of the assertion are exercised.
func testSIGTERM(t *testing.T, bin string) {
	dir := t.TempDir()
	ca := selfSigned(t, filepath.Join(dir, "tls"))
	fake := startFake(t)
	cfg := newChildConfig(t, dir, ca.Cert, ca.Key)
	cfg.sendTo(fake.Endpoint())
	// Delivery falls behind the producers.
	cfg.SLS.ShardBytesPerSec, cfg.SLS.LogGroup.MaxLogs = 20000, 100
	cfgPath := filepath.Join(dir, "slsrelay.yaml")
	cfg.write(t, cfgPath)
	env := childEnv("HTTP_PROXY=http://" + fake.Addr())
	store := e2eStore(5)

	c1 := startChild(t, "slsrelay (first run)", bin, cfgPath, env)
	c1.waitReady(t, cfg.admin(), 30*time.Second)

	var (
		ids     atomic.Int64
		mu      sync.Mutex
		acked   = map[string]int16{} // id → acks
		failed  int
		lastErr error
		pending sync.WaitGroup
	)
	newProducer := func(acks int16) *kgo.Client {
		opts := []kgo.Opt{
			kgo.DialTimeout(5 * time.Second), kgo.RequestTimeoutOverhead(5 * time.Second),
			kgo.RetryTimeout(10 * time.Second), kgo.RecordDeliveryTimeout(20 * time.Second),
			kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(2 * time.Millisecond),
			kgo.ProducerBatchCompression(kgo.NoCompression()), // ids readable in the WAL's raw batches
			kgo.MaxBufferedRecords(400),
		}
		if acks == 1 {
			opts = append(opts, kgo.SeedBrokers(cfg.plain()), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
		} else {
			opts = append(opts, kgo.SeedBrokers(cfg.sasl()), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.DialTLSConfig(clientTLS(certPool(t, ca.CA))),
				kgo.SASL(plain.Auth{User: relaytest.Project, Pass: relaytest.Password}.AsMechanism()))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close) // on an early failure; closed below otherwise
		return cl
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var loops sync.WaitGroup
	var clients []*kgo.Client
	for _, acks := range []int16{1, -1} {
		cl := newProducer(acks)
		clients = append(clients, cl)
		loops.Add(1)
		go func() {
			defer loops.Done()
			for ctx.Err() == nil {
				n := ids.Add(1)
				id := e2eID(int(n))
				rec := &kgo.Record{Topic: store, Partition: int32(n % 2), Value: []byte(fmt.Sprintf("%s acks=%d sigterm load", id, acks))}
				pending.Add(1)
				time.Sleep(500 * time.Microsecond) // a steady stream, not a flood
				cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
					mu.Lock()
					if err == nil {
						acked[id] = acks
					} else {
						failed++
						lastErr = err
					}
					mu.Unlock()
					pending.Done()
				})
			}
		}()
	}
	ackedBy := func() (one, all int) {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range acked {
			if a == 1 {
				one++
			} else {
				all++
			}
		}
		return
	}
	loadFrom := time.Now()
	waitFor(t, 30*time.Second, "both producers to be acknowledged 300 records", func() bool {
		one, all := ackedBy()
		return one >= 300 && all >= 300
	})
	time.Sleep(time.Until(loadFrom.Add(1500 * time.Millisecond))) // mid-stream, with a backlog

	termAt := time.Now()
	c1.signal(t, syscall.SIGTERM)
	code, ok := c1.exited(opsGrace)
	if !ok {
		c1.quit()
		t.Fatalf("the first run still runs %v after SIGTERM (goroutines dumped in its log)", opsGrace)
	}
	stopped := time.Since(termAt)
	if code != 0 {
		t.Errorf("the first run exited %d after SIGTERM, want 0", code)
	}
	// The producers learn of it through failed requests; stop them and
	// fail what they still buffer.
	stop()
	loops.Wait()
	for _, cl := range clients {
		cl.Close()
	}
	waitDone(t, &pending, 30*time.Second, "every produce callback")
	one, all := ackedBy()
	mu.Lock()
	t.Logf("SIGTERM: exit %d after %v; acked %d at acks=1 and %d at acks=-1, %d records failed (last: %v)",
		code, stopped.Round(time.Millisecond), one, all, failed, lastErr)
	mu.Unlock()
	if !strings.Contains(c1.stderr.String(), `msg="shutting down" signal=terminated`) {
		t.Errorf("the first run did not log that it shuts down on SIGTERM")
	}

	// Every acked id: delivered, or still in the WAL.
	delivered := idsIn(fake.Logs(relaytest.Project, store))
	inWAL := walIDs(t, cfg.DataDir)
	var lost []string
	onlyWAL := 0
	for id := range acked {
		switch {
		case delivered[id] > 0:
		case inWAL[id]:
			onlyWAL++
		default:
			lost = append(lost, id)
		}
	}
	sort.Strings(lost)
	t.Logf("after the stop: %d acked ids delivered, %d only in the WAL (the WAL holds %d ids past the committed positions)",
		len(acked)-onlyWAL-len(lost), onlyWAL, len(inWAL))
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged ids are neither delivered nor in the WAL after SIGTERM, e.g. %v", len(lost), lost[:min(len(lost), 10)])
	}

	// A restart on the same data_dir delivers the rest.
	c2 := startChild(t, "slsrelay (second run)", bin, cfgPath, env)
	c2.waitReady(t, cfg.admin(), 30*time.Second)
	var missing []string
	waitFor(t, 30*time.Second, "every acked id delivered after the restart", func() bool {
		if fake.LogCount(relaytest.Project, store) < len(acked) {
			return false
		}
		delivered = idsIn(fake.Logs(relaytest.Project, store))
		missing = missing[:0]
		for id := range acked {
			if delivered[id] == 0 {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	})
	dups := 0
	for _, n := range delivered {
		dups += n - 1
	}
	t.Logf("after the restart: all %d acked ids delivered (%d logs, %d duplicates, %d unacked records delivered too)",
		len(acked), fake.LogCount(relaytest.Project, store), dups, len(delivered)-len(acked))
	for id := range delivered {
		var n int
		if _, err := fmt.Sscanf(id, "id-%d", &n); err != nil || n < 1 || int64(n) > ids.Load() {
			t.Errorf("a log carries id %s, which was never produced", id)
		}
	}
	c2.signal(t, syscall.SIGTERM)
	if code, ok := c2.exited(opsGrace); !ok || code != 0 {
		t.Errorf("the second run after SIGTERM: exited %v, code %d; want exit 0", ok, code)
	}
	c1.checkNoSecret(t, "the first run", relaytest.Secret)
	c2.checkNoSecret(t, "the second run", relaytest.Secret)
}

// startFake runs a stand-in in the test process, for a child to reach
// through HTTP_PROXY (see testSIGTERM).
func startFake(t testing.TB) *slsfake.Server {
	t.Helper()
	fake, err := slsfake.New(e2eFakeConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	return fake
}

// idsIn counts the logs of each id.
func idsIn(logs []slsfake.StoredLog) map[string]int {
	m := map[string]int{}
	for _, l := range logs {
		for _, kv := range l.Contents {
			if id := idPattern.FindString(kv.Value); id != "" {
				m[id]++
				break
			}
		}
	}
	return m
}

// walIDs opens the stopped relay's WAL and returns the ids in every entry
// past each stream's committed position (the producers send uncompressed
// batches, so ids are in the raw bytes).
func walIDs(t testing.TB, dataDir string) map[string]bool {
	t.Helper()
	key, err := wal.LoadKeyFile(filepath.Join(dataDir, "wal.key"))
	if err != nil {
		t.Fatalf("the generated WAL key: %v", err)
	}
	w, err := wal.Open(filepath.Join(dataDir, "wal"), wal.Options{EncryptionKey: key})
	if err != nil {
		t.Fatalf("opening the WAL after the stop: %v", err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Errorf("closing the WAL: %v", err)
		}
	}()
	out := map[string]bool{}
	for _, st := range w.Stats().Streams {
		if st.NextOffset <= st.Committed {
			continue
		}
		r, err := w.Reader(st.Key)
		if err != nil {
			t.Fatalf("WAL reader %v: %v", st.Key, err)
		}
		for r.Position() < st.NextOffset {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			es, err := r.Read(ctx, 4<<20, 1000)
			cancel()
			if err != nil {
				t.Fatalf("reading the WAL stream %v at %d (next offset %d): %v", st.Key, r.Position(), st.NextOffset, err)
			}
			for _, e := range es {
				if e.Codec != 0 {
					t.Fatalf("a compressed entry (codec %d): the producers send uncompressed batches", e.Codec)
				}
				if e.Credential.AccessKeySecret != relaytest.Secret {
					t.Errorf("a WAL entry's secret does not decrypt to the producer's")
				}
				for _, id := range idPattern.FindAll(e.Data, -1) {
					out[string(id)] = true
				}
			}
		}
		_ = r.Close()
	}
	return out
}

// waitDone waits for wg with a bound.
func waitDone(t testing.TB, wg *sync.WaitGroup, timeout time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("after %v: still waiting for %s", timeout, what)
	}
}
