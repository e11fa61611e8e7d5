package main

// Operating it, in process: the admin listener's /metrics moves as the
// relay works (records in = logs delivered, SLS errors and retries under
// injected faults, SASL failures), and /healthz and /readyz say what they
// promise, /readyz turning 503 once a graceful Shutdown has begun.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// opsStore is a logstore only the ops tests write, so that the metrics
// labelled with it count their records alone.
const opsStore = "ops-metrics"

// startOpsRelay starts the e2e harness's relay with the admin listener on
// a free loopback port and the stand-in serving opsStore too.
func startOpsRelay(t *testing.T, mods ...func(*relay.Config)) *testRelay {
	t.Helper()
	fc := e2eFakeConfig()
	fc.Projects[0].Logstores = append(fc.Projects[0].Logstores, slsfake.LogstoreConfig{Name: opsStore, ShardCount: 2})
	fakePath := relaytest.StandInFile(t, fc)
	r := startTestRelay(t, append([]func(*relay.Config){func(c *relay.Config) {
		c.Admin.Listen = "127.0.0.1:0"
		c.SLS.StandIn.Config = fakePath
	}}, mods...)...)
	if r.Addrs.Admin == "" {
		t.Fatal("admin.listen is set but the relay has no admin address")
	}
	return r
}

// opsRecords returns n records with ids from first, over both partitions.
func opsRecords(first, n int) []sent {
	recs := make([]sent, n)
	for i := range recs {
		id := e2eID(first + i)
		v := fmt.Sprintf("%s metrics record %s", id, strings.Repeat("x", 100))
		recs[i] = sent{ID: id, Partition: int32(i % 2), Value: []byte(v)}
	}
	return recs
}

// delta is a counter's growth between two scrapes.
func delta(before, after opsMetrics, name string, kv ...string) float64 {
	return after.get(name, kv...) - before.get(name, kv...)
}

// scrapeSettled waits until a scrape of /metrics at adm satisfies settled,
// then returns a scrape taken after it. A scrape is no snapshot: it reads
// the counters before the WAL's gauges, so the one that first sees the
// backlog at 0 can miss a delivery counted while it was being written (a
// writer counts its logs just before it commits their position); one
// begun after that has every count the settled state implies.
func scrapeSettled(t *testing.T, adm, what string, settled func(opsMetrics) bool) opsMetrics {
	t.Helper()
	waitFor(t, e2eTimeout, what, func() bool { return settled(scrape(t, adm)) })
	return scrape(t, adm)
}

// TestOpsMetrics follows the counters through an end-to-end run: N
// records produced with franz-go are N records in and N logs delivered;
// the request, connection, produce-latency, WAL and SLS request metrics
// move; the WAL backlog gauges return to 0. Then PutLogs fails with 500
// three times (the stand-in's fault injection): three SLS errors with
// their code, three retries, and still every record delivered. Then a
// SASL password without '#' is a SASL failure, and a well-formed but
// wrong AccessKey is not (it is refused per topic).
//
// Not parallel: the metrics are process-wide (VictoriaMetrics' default
// set, shared by every relay of the test process) and some carry no label
// that tells relays apart (logs delivered, SLS requests). Parallel tests
// only start once the serial ones are done, so while this one runs no
// other relay delivers, and deltas are exact.
func TestOpsMetrics(t *testing.T) {
	r := startOpsRelay(t)
	adm := r.Addrs.Admin
	inLabels := []string{"project", relaytest.Project, "logstore", opsStore}

	m0 := scrape(t, adm)
	for _, name := range []string{"slsrelay_wal_disk_bytes", "slsrelay_wal_max_disk_bytes", "slsrelay_wal_pressure",
		"slsrelay_wal_pending_bytes", "slsrelay_wal_pending_entries", "slsrelay_wal_dead_letters",
		"slsrelay_wal_group_commits_total", "slsrelay_wal_fsyncs_total", "slsrelay_wal_oldest_pending_seconds",
		"slsrelay_produce_duration_seconds_count", "slsrelay_sls_requests_total", "slsrelay_logs_delivered_total"} {
		if !m0.has(name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if got := m0.get("slsrelay_wal_max_disk_bytes"); got != float64(r.cfg.WAL.MaxDiskBytes) {
		t.Errorf("slsrelay_wal_max_disk_bytes %v, want wal.max_disk_bytes %d", got, r.cfg.WAL.MaxDiskBytes)
	}

	// 1. A clean run.
	const n = 200
	cl, err := kgo.NewClient(r.kgoOpts(lPlain, "")...)
	if err != nil {
		t.Fatal(err)
	}
	if err := produceKgo(t, cl, opsStore, opsRecords(0, n)); err != nil {
		t.Fatalf("produce: %v", err)
	}
	r.waitLogs(t, relaytest.Project, opsStore, n, e2eTimeout)
	cl.Close()
	m1 := scrapeSettled(t, adm, "the WAL backlog gauges to return to 0 and the client's connections to close", func(m opsMetrics) bool {
		return m.get("slsrelay_wal_pending_bytes") == 0 && m.get("slsrelay_wal_pending_entries") == 0 &&
			m.get("slsrelay_wal_oldest_pending_seconds") == 0 &&
			m.get("slsrelay_connections", "listener", "PLAINTEXT") == m0.get("slsrelay_connections", "listener", "PLAINTEXT")
	})
	if got := r.fake.LogCount(relaytest.Project, opsStore); got != n {
		t.Errorf("the stand-in holds %d logs, want %d", got, n)
	}
	exact := func(before, after opsMetrics, want float64, name string, kv ...string) {
		t.Helper()
		if d := delta(before, after, name, kv...); d != want {
			t.Errorf("%s%v grew by %v, want %v", name, kv, d, want)
		}
	}
	grew := func(before, after opsMetrics, name string, kv ...string) float64 {
		t.Helper()
		d := delta(before, after, name, kv...)
		if d <= 0 {
			t.Errorf("%s%v did not grow (%v → %v)", name, kv, before.get(name, kv...), after.get(name, kv...))
		}
		return d
	}
	exact(m0, m1, n, "slsrelay_records_in_total", inLabels...)
	exact(m0, m1, n, "slsrelay_logs_delivered_total")
	grew(m0, m1, "slsrelay_bytes_in_total", inLabels...)
	grew(m0, m1, "slsrelay_raw_bytes_delivered_total")
	produces := grew(m0, m1, "slsrelay_requests_total", "api", "Produce")
	grew(m0, m1, "slsrelay_request_bytes_total", "api", "Produce")
	grew(m0, m1, "slsrelay_requests_total", "api", "Metadata")
	exact(m0, m1, produces, "slsrelay_produce_duration_seconds_count")
	grew(m0, m1, "slsrelay_connections_total", "listener", "PLAINTEXT")
	grew(m0, m1, "slsrelay_wal_group_commits_total")
	grew(m0, m1, "slsrelay_wal_fsyncs_total")
	grew(m0, m1, "slsrelay_wal_fsync_duration_seconds_count")
	oks := grew(m0, m1, "slsrelay_sls_requests_total", "result", "ok")
	exact(m0, m1, 0, "slsrelay_sls_requests_total", "result", "retry")
	exact(m0, m1, 0, "slsrelay_sls_requests_total", "result", "dead_letter")
	exact(m0, m1, 0, "slsrelay_sls_errors_total")
	exact(m0, m1, 0, "slsrelay_produce_errors_total")
	if d := delta(m0, m1, "slsrelay_sls_request_duration_seconds_count"); d < oks {
		t.Errorf("slsrelay_sls_request_duration_seconds_count grew by %v, less than the %v successful SLS requests", d, oks)
	}
	t.Logf("clean run: %d records in %v Produce requests, %v PutLogs", n, produces, oks)

	// 2. PutLogs answers 500 three times: counted by code, retried, and
	// everything still delivered.
	if _, err := r.fake.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Logstore: opsStore, Status: 500, Count: 3}); err != nil {
		t.Fatal(err)
	}
	const m = 100
	cl2 := newKgo(t, r.kgoOpts(lPlain, "")...)
	if err := produceKgo(t, cl2, opsStore, opsRecords(n, m)); err != nil {
		t.Fatalf("produce: %v", err)
	}
	r.waitLogs(t, relaytest.Project, opsStore, n+m, e2eTimeout)
	m2 := scrapeSettled(t, adm, "the WAL backlog to return to 0 after the faults", func(m opsMetrics) bool {
		return m.get("slsrelay_wal_pending_bytes") == 0
	})
	if f := r.fake.Faults(); len(f) != 0 {
		t.Errorf("the 500 fault is still active (%+v): PutLogs was not retried three times", f)
	}
	exact(m1, m2, m, "slsrelay_records_in_total", inLabels...)
	exact(m1, m2, m, "slsrelay_logs_delivered_total")
	exact(m1, m2, 3, "slsrelay_sls_errors_total", "code", "InternalServerError")
	exact(m1, m2, 3, "slsrelay_sls_errors_total")
	exact(m1, m2, 3, "slsrelay_sls_requests_total", "result", "retry")
	exact(m1, m2, 0, "slsrelay_sls_requests_total", "result", "dead_letter")
	grew(m1, m2, "slsrelay_sls_requests_total", "result", "ok")
	if got := r.fake.LogCount(relaytest.Project, opsStore); got != n+m {
		t.Errorf("the stand-in holds %d logs, want %d (a 500 must not duplicate or lose)", got, n+m)
	}

	// 3. SASL: a password without '#' fails SASL itself …
	conn, err := kafkatest.Dial(r.SASLSSL.Addr, r.TLS.Clone())
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Authenticate(relaytest.Project, "demo-aksecret-without-the-akid")
	conn.Close()
	if !isKerr(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("SASL with a password without '#': %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	m3 := scrape(t, adm)
	exact(m2, m3, 1, "slsrelay_sasl_failures_total", "listener", "SASL_SSL")
	exact(m2, m3, 1, "slsrelay_sasl_failures_total")
	grew(m2, m3, "slsrelay_connections_total", "listener", "SASL_SSL")

	// … while a wrong AccessKeySecret passes SASL and is refused per
	// topic, as SLS's own endpoint does.
	conn, err = kafkatest.Dial(r.SASLSSL.Addr, r.TLS.Clone())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Authenticate(relaytest.Project, relaytest.AKID+"#not-the-secret"); err != nil {
		t.Fatalf("SASL with a wrong secret: %v, want authenticated (the key is checked per topic)", err)
	}
	if err := conn.Produce(opsStore, 0, -1, "id-999999 refused"); !isKerr(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("Produce with a wrong secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	m4 := scrape(t, adm)
	exact(m3, m4, 0, "slsrelay_sasl_failures_total")
	exact(m3, m4, 1, "slsrelay_produce_errors_total", "error", "TOPIC_AUTHORIZATION_FAILED")
	exact(m3, m4, 0, "slsrelay_records_in_total", inLabels...)

	// Neither password, right or wrong, reaches the log.
	for _, secret := range []string{relaytest.Secret, "not-the-secret", "without-the-akid"} {
		if n := r.Log.Count(secret); n > 0 {
			t.Errorf("the relay logged %q in %d lines", secret, n)
		}
	}
	if r.Log.Count("SASL authentication failed") != 1 {
		t.Errorf("the SASL failure was not logged once:\n%s", r.Log.String())
	}
}

// TestOpsHealthReady: /healthz and /readyz answer 200 while the relay
// runs; once a graceful Shutdown has begun, /readyz answers 503 (a load
// balancer stops sending new producers while those connected drain) until
// the admin listener closes, and the drain answers the request in flight.
// The request in flight is a Produce to a logstore the relay has not
// checked yet: its AccessKey's first write (the PutLogs that proves it) is held 1 s by a latency
// fault in the stand-in, so Shutdown has something to wait for.
func TestOpsHealthReady(t *testing.T) {
	t.Parallel()
	r := startOpsRelay(t)
	adm := r.Addrs.Admin
	for _, p := range []struct{ path, body string }{{"/healthz", "ok\n"}, {"/readyz", "ready\n"}} {
		code, body, err := httpGet(adm, p.path)
		if err != nil || code != http.StatusOK || body != p.body {
			t.Errorf("GET %s while running: %d %q %v, want 200 %q", p.path, code, body, err, p.body)
		}
	}

	const hold = time.Second
	store := e2eStore(4)
	if _, err := r.fake.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Logstore: store, Latency: hold, Count: 1}); err != nil {
		t.Fatal(err)
	}
	conn, err := kafkatest.Dial(r.Plain.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := kafkatest.ProduceValues(store, 0, -1, e2eID(1)+" in flight during Shutdown")
	ids, err := conn.SendAll(req)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the stand-in to hold the PutLogs proving the first write", func() bool {
		for _, f := range r.fake.Faults() {
			if f.Matched > 0 {
				return true
			}
		}
		return len(r.fake.Faults()) == 0 // hit and expired already
	})

	// Shutdown while the Produce waits; poll /readyz meanwhile.
	type probe struct {
		at   time.Duration
		code int
		err  error
	}
	var (
		mu     sync.Mutex
		probes []probe
	)
	begun := time.Now()
	done := make(chan error, 1)
	go func() { done <- r.Close() }()
	pollCtx, stopPoll := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pollCtx.Err() == nil {
			code, _, err := httpGet(adm, "/readyz")
			mu.Lock()
			probes = append(probes, probe{time.Since(begun), code, err})
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()

	resp, recvErr := conn.Recv(ids[0], req, 10*time.Second)
	answered := time.Since(begun)
	var shutdownErr error
	select {
	case shutdownErr = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return within 20 s")
	}
	took := time.Since(begun)
	stopPoll()
	wg.Wait()

	if shutdownErr != nil {
		t.Errorf("Shutdown: %v", shutdownErr)
	}
	if recvErr != nil {
		t.Errorf("the Produce in flight when Shutdown began was never answered: %v", recvErr)
	} else if _, perr := kafkatest.ProduceResult(resp); perr != nil {
		t.Errorf("the Produce in flight when Shutdown began: %v, want accepted", perr)
	}

	var saw503, refused int
	var summary []string
	for _, p := range probes {
		switch {
		case p.err != nil:
			refused++
		case p.code == http.StatusServiceUnavailable:
			saw503++
		case p.code == http.StatusOK && saw503 > 0:
			// (a 200 before the first 503 may have raced the start of the drain)
			t.Errorf("/readyz answered 200 again %v after Shutdown began, after 503", p.at)
		}
		if len(summary) < 6 {
			s := fmt.Sprint(p.code)
			if p.err != nil {
				s = "no answer"
			}
			summary = append(summary, fmt.Sprintf("%v: %s", p.at.Round(time.Millisecond), s))
		}
	}
	t.Logf("Shutdown took %v, the Produce in flight was answered after %v; /readyz during it: %d × 503, %d × no answer (first probes %v)",
		took.Round(time.Millisecond), answered.Round(time.Millisecond), saw503, refused, summary)
	if saw503 == 0 {
		t.Errorf("/readyz never answered 503 during the %v Shutdown took (%d probes found the admin listener closed already): "+
			"a load balancer cannot tell a draining relay from a dead one", took.Round(time.Millisecond), refused)
	}
}
