package engine

// The pieces of the fleet test (fleet_test.go): relay nodes that keep their
// port and their appender (the node's volume) across restarts, each with a
// /readyz as the daemon's admin listener serves it; HAProxy in front of
// them on loopback; producers that record when each record was sent and
// acknowledged; and the check of every node's appender.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// fleetBrokerID is the one broker every node names (Options.BrokerID).
const fleetBrokerID = 1

// fleetNode is one relay of the fleet. Its Server is replaced on each
// restart; its port and appender stay.
type fleetNode struct {
	t      testing.TB
	id     int32
	bind   string // 127.0.0.1:port, the same after a restart
	shared string // the address every node advertises
	linger time.Duration
	app    *MemoryAppender
	srv    atomic.Pointer[Server] // nil while the node is down
	ready  *httptest.Server       // GET /readyz: 200 while srv is Ready
}

// freeLoopbackAddr returns a 127.0.0.1 address no one listens on now.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newFleetNode(t testing.TB, id int32, shared string, linger time.Duration) *fleetNode {
	n := &fleetNode{t: t, id: id, bind: freeLoopbackAddr(t), shared: shared, linger: linger, app: &MemoryAppender{}}
	n.ready = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if srv := n.srv.Load(); srv != nil && srv.Ready() {
			fmt.Fprintln(w, "ready")
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	t.Cleanup(n.ready.Close)
	t.Cleanup(func() {
		if srv := n.srv.Swap(nil); srv != nil {
			srv.Close()
		}
	})
	return n
}

// start starts the node on its port, retrying briefly while the port of
// its previous run is still being let go.
func (n *fleetNode) start() {
	n.t.Helper()
	principal := &Principal{Project: testProject, Credential: wal.Credential{AccessKeyID: testAKID, AccessKeySecret: testSecret}}
	opts := Options{
		Listeners:   []ListenerOptions{{Name: "PLAINTEXT", Protocol: Plaintext, Bind: n.bind, Advertised: n.shared, Principal: principal}},
		NodeID:      n.id,
		BrokerID:    fleetBrokerID,
		DrainLinger: n.linger,
		EventLoops:  1,
		Logger:      testLogger(),
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var srv *Server
		if srv, err = New(opts, testCatalog(), n.app); err != nil {
			n.t.Fatal(err)
		}
		if err = srv.Start(); err == nil {
			n.srv.Store(srv)
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("node %d cannot listen on %s again: %v", n.id, n.bind, err)
		}
	}
}

// kill stops the node at once, as if its process died: connections drop,
// requests in flight get no answer. What it stored stays in its appender.
func (n *fleetNode) kill() {
	if srv := n.srv.Swap(nil); srv != nil {
		srv.Close()
	}
}

// drain drains the node (SIGTERM) and leaves it down.
func (n *fleetNode) drain() error {
	srv := n.srv.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := srv.Drain(ctx)
	n.srv.CompareAndSwap(srv, nil)
	return err
}

// connections is how many connections the node has open (0 when down).
func (n *fleetNode) connections() int {
	srv := n.srv.Load()
	if srv == nil {
		return 0
	}
	count := 0
	srv.sessions.Range(func(_, _ any) bool { count++; return true })
	return count
}

// haproxyPath finds haproxy (Debian puts it in /usr/sbin). Without it the
// test skips, except under CI, where a missing haproxy is a failure.
func haproxyPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "haproxy is not installed: run `make deps` (apt-get install haproxy) to run the fleet test"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startHAProxy runs HAProxy in TCP mode on front, balancing round-robin
// over the nodes. It checks each node's /readyz every 200 ms and takes a
// node out at the first failure, as Kubernetes' readiness probe takes a
// pod out of a Service; a connection refused by a node it still thinks up
// is retried on another (redispatch).
func startHAProxy(t testing.TB, front string, nodes []*fleetNode) {
	t.Helper()
	path := haproxyPath(t)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
    maxconn 4096
defaults
    mode tcp
    timeout connect 1s
    timeout client 10m
    timeout server 10m
    retries 3
    option redispatch 1
frontend kafka
    bind %s
    default_backend relays
backend relays
    balance roundrobin
    option httpchk GET /readyz
    default-server inter 200ms fastinter 100ms downinter 200ms fall 1 rise 1
`, front)
	for _, n := range nodes {
		_, readyPort, _ := net.SplitHostPort(strings.TrimPrefix(n.ready.URL, "http://"))
		fmt.Fprintf(&cfg, "    server node%d %s check port %s\n", n.id, n.bind, readyPort)
	}
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(path, "-f", file, "-db")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start haproxy: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("haproxy exited: %v\n%s\nconfig:\n%s", err, out.String(), cfg.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", front, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s after 5 s:\n%s", front, out.String())
		}
	}
}

// fleetClient is one producer's record of what it sent and what was
// acknowledged. Safe for concurrent use.
type fleetClient struct {
	name  string
	mu    sync.Mutex
	sent  map[int]time.Time     // seq -> first send
	acked map[int]time.Duration // seq -> wait from first send to acknowledgement
	// resent counts records the client library gave up on and the
	// shipper sent again (as libbeat's pipeline does).
	resent int
	retry  chan int // seqs to send again
}

func newFleetClient(name string) *fleetClient {
	return &fleetClient{name: name, sent: map[int]time.Time{}, acked: map[int]time.Duration{}, retry: make(chan int, 1<<16)}
}

// value is the record of seq: its client's name (the tag, see clTagOf),
// its number, and filler as a log line would have.
func (c *fleetClient) value(seq int) []byte {
	return fmt.Appendf(nil, "%s #%06d %s", c.name, seq, strings.Repeat("fleet of relays behind one address ", 4))
}

// seqOf reads the number back from a value of c.
func seqOf(value []byte) (int, bool) {
	_, rest, ok := bytes.Cut(value, []byte(" #"))
	if !ok || len(rest) < 6 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:6]))
	return n, err == nil
}

func (c *fleetClient) sending(seq int) {
	c.mu.Lock()
	if _, ok := c.sent[seq]; !ok {
		c.sent[seq] = time.Now()
	}
	c.mu.Unlock()
}

func (c *fleetClient) ack(seq int) {
	c.mu.Lock()
	if _, ok := c.acked[seq]; !ok {
		c.acked[seq] = time.Since(c.sent[seq])
	}
	c.mu.Unlock()
}

// failed queues seq to be sent again.
func (c *fleetClient) failed(seq int) {
	c.mu.Lock()
	c.resent++
	c.mu.Unlock()
	c.retry <- seq
}

// outstanding is how many records sent are not acknowledged.
func (c *fleetClient) outstanding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sent) - len(c.acked)
}

// run sends a new record every interval, and records to send again as
// they come, until stop is closed.
func (c *fleetClient) run(interval time.Duration, stop <-chan struct{}, send func(seq int)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := 0; ; {
		select {
		case <-stop:
			return
		case s := <-c.retry:
			send(s)
		case <-tick.C:
			c.sending(seq)
			send(seq)
			seq++
		}
	}
}

// resendUntil keeps sending records that failed until every record sent
// is acknowledged or the deadline passes; it reports whether all were.
func (c *fleetClient) resendUntil(deadline time.Time, send func(seq int)) bool {
	for c.outstanding() > 0 {
		select {
		case s := <-c.retry:
			send(s)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// fleetStored is every copy of every record the nodes hold, by client
// name and seq: the times the copies were received (Unix ns).
type fleetStored map[string]map[int][]int64

// storedIn decodes every node's appender, checking each stream's entries
// as clRelay.stream does (whole, gapless offsets).
func storedIn(t testing.TB, nodes []*fleetNode) fleetStored {
	t.Helper()
	out := fleetStored{}
	for _, n := range nodes {
		cr := &clRelay{testRelay: &testRelay{app: n.app}, decoded: map[wal.StreamKey]*clStream{}}
		for _, k := range n.app.Streams() {
			for _, e := range cr.stream(k) {
				if e.err != nil {
					t.Errorf("node %d %s[%d] entry %d: %v", n.id, k.Logstore, k.Partition, e.index, e.err)
				}
				for _, r := range e.recs {
					seq, ok := seqOf(r.Value)
					if !ok {
						continue
					}
					tag := clTagOf(r.Value)
					if out[tag] == nil {
						out[tag] = map[int][]int64{}
					}
					out[tag][seq] = append(out[tag][seq], e.ReceivedAt)
				}
			}
		}
	}
	return out
}

// fleetReport is what one client saw.
type fleetReport struct {
	name                    string
	sent, acked, duplicates int
	resent                  int
	worst, p99              time.Duration
}

func (r fleetReport) String() string {
	return fmt.Sprintf("%-8s sent %5d, acknowledged %5d, stored twice %3d, resent by the shipper %3d; ack wait: worst %v, p99 %v",
		r.name, r.sent, r.acked, r.duplicates, r.resent, r.worst.Round(time.Millisecond), r.p99.Round(time.Millisecond))
}

// check fails the test for every acknowledged record of c that no node
// holds, and reports c's waits.
func (c *fleetClient) check(t testing.TB, stored fleetStored) fleetReport {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	rep := fleetReport{name: c.name, sent: len(c.sent), acked: len(c.acked), resent: c.resent}
	var lost []int
	var waits []time.Duration
	for seq, wait := range c.acked {
		copies := stored[c.name][seq]
		if len(copies) == 0 {
			lost = append(lost, seq)
		}
		if len(copies) > 1 {
			rep.duplicates++
		}
		waits = append(waits, wait)
	}
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Errorf("%s: %d acknowledged records are in no node's appender, e.g. #%d", c.name, len(lost), lost[0])
	}
	slices.Sort(waits)
	if len(waits) > 0 {
		rep.worst = waits[len(waits)-1]
		rep.p99 = waits[len(waits)*99/100]
	}
	return rep
}

// logWorst logs the n records that waited longest, with when they were
// sent, to tie a wait to the event that caused it.
func (c *fleetClient) logWorst(t testing.TB, start time.Time, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seqs := make([]int, 0, len(c.acked))
	for seq := range c.acked {
		seqs = append(seqs, seq)
	}
	slices.SortFunc(seqs, func(a, b int) int { return int(c.acked[b] - c.acked[a]) })
	for _, seq := range seqs[:min(n, len(seqs))] {
		t.Logf("  %s #%d sent at %.2fs waited %v", c.name, seq, c.sent[seq].Sub(start).Seconds(), c.acked[seq].Round(time.Millisecond))
	}
}
