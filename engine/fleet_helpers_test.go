package engine

// The pieces of the fleet test (fleet_test.go): relay nodes that keep their
// port and their appender (the node's volume) across restarts, each with a
// /readyz as the daemon's admin listener serves it; HAProxy in front of
// them on loopback; and what every node's appender holds. The producers'
// accounts are kafkatest.FleetClient, shared with the daemon's fleet test.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
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

// startHAProxy runs HAProxy in front of the nodes (kafkatest.StartHAProxy),
// checking each node's /readyz.
func startHAProxy(t testing.TB, front string, nodes []*fleetNode) {
	t.Helper()
	path := kafkatest.Tool(t, "haproxy", "/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
	var backends []kafkatest.HAProxyNode
	for _, n := range nodes {
		_, readyPort, _ := net.SplitHostPort(strings.TrimPrefix(n.ready.URL, "http://"))
		backends = append(backends, kafkatest.HAProxyNode{Addr: n.bind, ReadyPort: readyPort})
	}
	kafkatest.StartHAProxy(t, path, front, backends)
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
					seq, ok := kafkatest.SeqOf(r.Value)
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

// times is when each copy of client's record seq was received.
func (s fleetStored) times(client string, seq int) []time.Time {
	var out []time.Time
	for _, ns := range s[client][seq] {
		out = append(out, time.Unix(0, ns))
	}
	return out
}
