package main

// A fleet behind one address (issue 14), as the daemon runs it: three
// slsrelay processes, each with its own data_dir (its WAL), advertise
// HAProxy's address and name broker 1 (README "Running a fleet"). sarama
// with Filebeat's settings, librdkafka (kcat), kafka-python and franz-go
// produce through that address while each process in turn is SIGKILLed
// and restarted on its data_dir, then one is sent SIGTERM (the drain) and restarted, as in
// a rolling update. Every acknowledged record must reach the stand-in
// (which all three deliver to); each client's worst wait for an ack is
// reported and must stay within 15 s.
//
// The normal suite runs a short plan (about 20 s); SLSRELAY_LONG_TESTS=1
// runs the issue's: nodes down for 5 s, a 5 s drain linger.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

func TestOpsFleet(t *testing.T) {
	plan := kafkatest.FleetPlanFromEnv()
	haproxy := kafkatest.Tool(t, "haproxy", "/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
	kcatPath := kafkatest.Tool(t, "kcat")
	kafkatest.KafkaPython(t)
	bin := slsrelayBinary(t)
	fake := startFake(t)
	front := stableAddr(t)
	var nodes []*opsNode
	for id := int32(1); id <= 3; id++ {
		n := newOpsNode(t, bin, id, front, fake, plan.Linger)
		n.start()
		nodes = append(nodes, n)
	}
	var backends []kafkatest.HAProxyNode
	for _, n := range nodes {
		backends = append(backends, kafkatest.HAProxyNode{Addr: n.cfg.plain(), ReadyPort: portOf(n.cfg.admin())})
	}
	kafkatest.StartHAProxy(t, haproxy, front, backends)

	// Each shipper writes its own Logstore. franz-go is not pinned: the
	// relay offers Produce up to v12, which names topics (v13 addressed
	// them by IDs a node that never saw the topic could not resolve).
	logstore := map[string]string{"franz-go": e2eStore(21), "sarama": e2eStore(22), "kcat": e2eStore(23), "kafka-python": e2eStore(24)}
	shippers := kafkatest.StartFleetShippers(t, kafkatest.FleetShipperOptions{
		Front: front, Interval: plan.Interval, KcatPath: kcatPath,
		Topic:       func(name string) string { return logstore[name] },
		KcatArgs:    []string{"-d", "broker,protocol"}, // librdkafka's debug log, shown if kcat fails
		KafkaPython: true,
	})

	start := time.Now()
	event := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(start).Seconds()}, args...)...)
	}
	time.Sleep(plan.Warmup)
	for _, n := range nodes {
		n.kill()
		event("node %d SIGKILLed", n.id)
		time.Sleep(plan.Down)
		n.start()
		event("node %d restarted on its data_dir and ready", n.id)
		time.Sleep(plan.Settle)
	}

	// The drain is of the node most producers' connections are on.
	conns := make([]float64, len(nodes))
	drained := nodes[0]
	for i, n := range nodes {
		conns[i] = scrape(t, n.cfg.admin()).get("slsrelay_connections")
		if conns[i] > conns[slices.Index(nodes, drained)] {
			drained = n
		}
	}
	event("open connections per node: %v; node %d gets SIGTERM", conns, drained.id)
	termAt := time.Now()
	drained.c.signal(t, syscall.SIGTERM)
	// Just before the drain stops listening, its producers must have
	// moved: every connection they had there closed.
	time.Sleep(plan.Linger - 300*time.Millisecond)
	if code, _, err := httpGet(drained.cfg.admin(), "/readyz"); err != nil || code != 503 {
		t.Errorf("node %d during its drain: /readyz %d (%v), want 503", drained.id, code, err)
	}
	if m, err := scrapeSoft(drained.cfg.admin()); err != nil {
		t.Errorf("node %d during its drain: /metrics: %v", drained.id, err)
	} else {
		left := m.get("slsrelay_connections")
		event("node %d, %v into its drain: %v connections left, %v Produce requests answered NOT_LEADER_OR_FOLLOWER",
			drained.id, time.Since(termAt).Round(time.Millisecond), left, m.get("slsrelay_drain_refused_produce_total"))
		if left > 0 {
			t.Errorf("node %d still had %v connections 300 ms before its drain stopped listening", drained.id, left)
		}
	}
	if code, ok := drained.c.exited(plan.Linger + 20*time.Second); !ok || code != 0 {
		t.Errorf("node %d after SIGTERM: exited %v code %d, want exit 0", drained.id, ok, code)
	}
	event("node %d drained and exited", drained.id)
	time.Sleep(plan.Down)
	drained.start()
	event("node %d restarted and ready", drained.id)
	time.Sleep(plan.Settle)
	event("stopping the shippers; waiting for every record to be acknowledged")
	shippers.Finish(t, 60*time.Second)
	event("every record acknowledged; waiting for the nodes to deliver them")

	// kcat's waits are bounded by when the record first reached the
	// stand-in, after its ack (for what a killed node stored just before
	// its kill, after that node's downtime).
	for _, c := range shippers.Clients() {
		var stored map[int][]time.Time
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			stored = inStandIn(fake, logstore[c.Name])
			if c.Unstored(func(seq int) []time.Time { return stored[seq] }) == 0 || time.Now().After(deadline) {
				break
			}
		}
		t.Log(c.Check(t, func(seq int) []time.Time { return stored[seq] }, kafkatest.Earliest))
		c.LogWorst(t, start, 3)
	}
	for _, n := range nodes {
		m := scrape(t, n.cfg.admin())
		t.Logf("node %d (last run): %v records in, %v bytes pending in its WAL", n.id,
			m.get("slsrelay_records_in_total"), m.get("slsrelay_wal_pending_bytes"))
		n.c.checkNoSecret(t, fmt.Sprintf("node %d", n.id), relaytest.Secret)
	}
}

// opsNode is one slsrelay process of the fleet: its config (ports,
// data_dir) stays across restarts; c is its current run.
type opsNode struct {
	t       testing.TB
	id      int32
	bin     string
	cfg     childConfig
	cfgPath string
	env     []string
	c       *child
}

// newOpsNode configures node id: PLAINTEXT only, advertising shared, broker
// 1, delivering to fake.
func newOpsNode(t testing.TB, bin string, id int32, shared string, fake *slsfake.Server, linger time.Duration) *opsNode {
	t.Helper()
	cfg := childConfig{relaytest.Config(t)}
	cfg.Listeners = cfg.Listeners[:1]
	cfg.Listeners[0].Bind = stableAddr(t)
	cfg.Listeners[0].Advertised = shared
	cfg.NodeID, cfg.BrokerID = id, 1
	cfg.Limits.DrainLinger = linger
	cfg.Admin.Listen = stableAddr(t)
	cfg.SLS.RetryInterval = 100 * time.Millisecond
	cfg.SLS.Linger = 20 * time.Millisecond
	cfg.sendTo(fake.Endpoint())
	n := &opsNode{t: t, id: id, bin: bin, cfg: cfg, cfgPath: filepath.Join(t.TempDir(), "slsrelay.yaml"), env: childEnv("HTTP_PROXY=http://" + fake.Addr())}
	cfg.write(t, n.cfgPath)
	return n
}

// start runs the node on its config and waits until /readyz says 200.
func (n *opsNode) start() {
	n.t.Helper()
	n.c = startChild(n.t, fmt.Sprintf("node %d", n.id), n.bin, n.cfgPath, n.env)
	n.c.waitReady(n.t, n.cfg.admin(), 30*time.Second)
}

// kill SIGKILLs the node: connections drop, requests in flight get no
// answer; what it acknowledged is in its WAL on disk.
func (n *opsNode) kill() {
	n.t.Helper()
	n.c.signal(n.t, syscall.SIGKILL)
	if _, ok := n.c.exited(10 * time.Second); !ok {
		n.t.Fatalf("node %d still runs 10 s after SIGKILL", n.id)
	}
}

// stableAddr is a free loopback address whose port is below the kernel's
// ephemeral range. A node's ports must stay its own while it is down:
// freeAddr's come from the ephemeral range, where an outgoing connection
// (HAProxy's to that very node, a health check) may take the port as its
// source: the restart cannot bind it, or, worse, the connection to the
// down node's port connects to itself (TCP simultaneous open) and HAProxy
// forwards a producer's request into a loop that echoes it, never
// answered (librdkafka waits out its 60 s socket.timeout.ms).
func stableAddr(t testing.TB) string {
	t.Helper()
	low := 32768 // Linux's default start of net.ipv4.ip_local_port_range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const first = 10000
	if low <= first+1000 {
		t.Skipf("the ephemeral port range starts at %d: no room for stable ports below it", low)
	}
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(first+rand.IntN(low-first)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free loopback port below the ephemeral range after 100 tries")
	return ""
}

// scrapeSoft is scrape for a node that may be going away: an error is
// returned, not fatal.
func scrapeSoft(addr string) (opsMetrics, error) {
	code, body, err := httpGet(addr, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("GET /metrics: %d", code)
	}
	return parseExposition(body)
}

// inStandIn is when each record of logstore reached the stand-in (one
// time per copy), by the record's number.
func inStandIn(fake *slsfake.Server, logstore string) map[int][]time.Time {
	out := map[int][]time.Time{}
	for _, l := range fake.Logs(relaytest.Project, logstore) {
		for _, kv := range l.Contents {
			if seq, ok := kafkatest.SeqOf([]byte(kv.Value)); ok {
				out[seq] = append(out[seq], l.Received)
				break
			}
		}
	}
	return out
}
