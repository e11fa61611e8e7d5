package main

// A graceful stop ends promptly whatever the clients and SLS do: a TLS
// client sending during the drain does not keep the listener from
// stopping, and the writers stop at the next LogGroup rather than sending
// everything they have read first.

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// TestOpsSIGTERMDrainTLS: SIGTERM while a Produce is in flight (its AccessKey
// check held 2 s by the stand-in), and meanwhile a SASL_SSL client that
// was idle sends a request. The request in flight must be answered and
// the process must exit 0 once the drain is over, whatever the TLS
// client does during the drain.
func TestOpsSIGTERMDrainTLS(t *testing.T) {
	t.Parallel()
	bin := slsrelayBinary(t)
	dir := t.TempDir()
	ca := selfSigned(t, filepath.Join(dir, "tls"))
	fake := startFake(t)
	cfg := newChildConfig(t, dir, ca.Cert, ca.Key)
	cfg.sendTo(fake.Endpoint())
	cfgPath := filepath.Join(dir, "slsrelay.yaml")
	cfg.write(t, cfgPath)
	c := startChild(t, "slsrelay", bin, cfgPath, childEnv("HTTP_PROXY=http://"+fake.Addr()))
	c.waitReady(t, cfg.admin(), 30*time.Second)

	tlsConn, err := kafkatest.Dial(cfg.sasl(), clientTLS(certPool(t, ca.CA)))
	if err != nil {
		t.Fatal(err)
	}
	defer tlsConn.Close()
	if err := tlsConn.Authenticate(relaytest.Project, relaytest.Password); err != nil {
		t.Fatalf("SASL: %v", err)
	}
	if err := tlsConn.Produce(e2eStore(7), 0, -1, e2eID(1)+" over TLS"); err != nil {
		t.Fatalf("Produce over SASL_SSL: %v", err)
	}

	const hold = 2 * time.Second
	held := e2eStore(8)
	if _, err := fake.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Logstore: held, Latency: hold, Count: 1}); err != nil {
		t.Fatal(err)
	}
	plainConn, err := kafkatest.Dial(cfg.plain(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plainConn.Close()
	req := kafkatest.ProduceValues(held, 0, 1, e2eID(2)+" in flight at SIGTERM")
	ids, err := plainConn.SendAll(req)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the stand-in to hold the PutLogs proving the first write", func() bool {
		fs := fake.Faults()
		return len(fs) == 0 || fs[0].Matched > 0
	})

	termAt := time.Now()
	c.signal(t, syscall.SIGTERM)
	c.stderr.wait(t, 5*time.Second, 0, `msg="shutting down"`)
	time.Sleep(200 * time.Millisecond) // the drain has begun; it lasts until the held request is answered
	tlsErr := tlsConn.Produce(e2eStore(7), 1, -1, e2eID(3)+" over TLS during the drain")
	t.Logf("a Produce on the idle SASL_SSL connection during the drain: %v", tlsErr)

	if resp, err := plainConn.Recv(ids[0], req, hold+5*time.Second); err != nil {
		t.Errorf("the Produce in flight at SIGTERM was never answered: %v", err)
	} else if _, perr := kafkatest.ProduceResult(resp); perr != nil {
		t.Errorf("the Produce in flight at SIGTERM: %v, want accepted", perr)
	}
	const bound = hold + 8*time.Second
	code, ok := c.exited(bound - time.Since(termAt))
	if !ok {
		c.quit()
		t.Fatalf("still running %v after SIGTERM although the drain ended after %v (goroutines dumped in its log)", bound, hold)
	}
	t.Logf("exit %d %v after SIGTERM", code, time.Since(termAt).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exited %d after SIGTERM, want 0", code)
	}
	c.checkNoSecret(t, "slsrelay", relaytest.Secret)
}

// TestOpsShutdownStopsWriters: a graceful Shutdown stops the writers at
// the next LogGroup, leaving the rest in the WAL for the next start,
// rather than first sending everything they have read. Here SLS answers
// each PutLogs after 300 ms and one stored batch of 400 records makes 20
// LogGroups (max_log_group_logs 20): sending them all takes 6 s, stopping
// at the next one well under 3 s (one PutLogs in flight plus the
// listeners' own stop).
func TestOpsShutdownStopsWriters(t *testing.T) {
	t.Parallel()
	const latency = 300 * time.Millisecond
	r := startOpsRelay(t, func(c *relay.Config) { c.SLS.LogGroup.MaxLogs = 20 })
	store := e2eStore(6)
	if _, err := r.fake.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Logstore: store, Latency: latency}); err != nil {
		t.Fatal(err)
	}
	recs := opsRecords(0, 400)
	for i := range recs {
		recs[i].Partition = 0
	}
	cl := newKgo(t, r.kgoOpts(lPlain, "")...)
	if err := produceKgo(t, cl, store, recs); err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitFor(t, 10*time.Second, "the first LogGroup to reach SLS", func() bool { return r.fake.LogCount(relaytest.Project, store) > 0 })
	cl.Close()

	begun := time.Now()
	if err := r.Close(); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	took := time.Since(begun)
	n := r.fake.LogCount(relaytest.Project, store)
	t.Logf("Shutdown took %v; %d of %d logs were delivered by then", took.Round(time.Millisecond), n, len(recs))
	if took > 3*time.Second {
		t.Errorf("Shutdown took %v with PutLogs answering in %v: the writers went on sending the %d LogGroups they had read "+
			"(%d of %d logs delivered) instead of stopping at the next one", took.Round(time.Millisecond), latency, len(recs)/20, n, len(recs))
	}
}
