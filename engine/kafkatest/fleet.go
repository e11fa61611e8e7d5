package kafkatest

// The pieces both fleet tests share (engine/fleet_test.go: engine servers
// in the test; cmd/slsrelay/ops_fleet_test.go: slsrelay processes): the
// tools they need, sarama configured as Filebeat configures it, HAProxy in
// front of the nodes on loopback, and a producer's account of what it
// sent and what was acknowledged.

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// FleetMaxAckWait is the goal (issue 14) for a shipper's worst ack wait
// through a node's loss or drain.
const FleetMaxAckWait = 15 * time.Second

// Tool finds a program a test needs on PATH or at one of alt (Debian puts
// haproxy in /usr/sbin). Without it the test skips, except under CI, where
// a missing tool is a failure: `make deps` installs them.
func Tool(t testing.TB, name string, alt ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range alt {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := name + " is not installed: run `make deps` to run this test"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// BeatsSaramaConfig is sarama configured as Filebeat's Kafka output
// configures it with its defaults (elastic/beats
// libbeat/outputs/kafka/config.go, defaultConfig and newSaramaConfig):
// timeout 30 s for dial, read and write, broker_timeout 10 s, metadata
// retries 3 with 250 ms backoff and a refresh every 10 min of the topics
// in use only, max_retries 3 (sarama's retries; libbeat sends again what
// sarama gives up on), channel_buffer_size 256, bulk_max_size 2048, gzip,
// version 1.0.0, client id "beats", acks 1 (the library's default), and
// the hash partitioner (random for records without a key).
func BeatsSaramaConfig() *sarama.Config {
	k := sarama.NewConfig()
	k.Net.DialTimeout, k.Net.ReadTimeout, k.Net.WriteTimeout = 30*time.Second, 30*time.Second, 30*time.Second
	k.Producer.Timeout = 10 * time.Second
	k.Metadata.Retry.Max, k.Metadata.Retry.Backoff = 3, 250*time.Millisecond
	k.Metadata.RefreshFrequency, k.Metadata.Full = 10*time.Minute, false
	k.Producer.Retry.Max = 3
	k.ChannelBufferSize = 256
	k.Producer.Flush.MaxMessages = 2048
	k.Producer.Compression, k.Producer.CompressionLevel = sarama.CompressionGZIP, 4
	k.Producer.RequiredAcks = sarama.WaitForLocal
	k.Producer.Return.Successes, k.Producer.Return.Errors = true, true
	k.Producer.Partitioner = sarama.NewHashPartitioner
	k.Version = sarama.V1_0_0_0
	k.ClientID = "beats"
	return k
}

// HAProxyNode is one node behind HAProxy: its Kafka listener and the port
// of its GET /readyz.
type HAProxyNode struct {
	Addr      string
	ReadyPort string
	// SendProxy makes HAProxy start each connection to the node with a
	// PROXY protocol header naming the client: "send-proxy" (v1, text) or
	// "send-proxy-v2" (binary); "" sends none. Health checks (on
	// ReadyPort) get none.
	SendProxy string
}

// StartHAProxy runs HAProxy (the binary at path) in TCP mode on front,
// round-robin over nodes. It checks each node's /readyz every 200 ms and
// takes a node out at the first failure, as Kubernetes' readiness probe
// takes a pod out of a Service; a connection refused by a node it still
// thinks up is retried on another (redispatch). Its log, with a line per
// connection when it ends (the node it went to, how long, how it ended),
// is shown if the test fails.
func StartHAProxy(t testing.TB, path, front string, nodes []HAProxyNode) {
	t.Helper()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
    maxconn 4096
    log stdout format raw daemon
defaults
    mode tcp
    log global
    option tcplog
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
	for i, n := range nodes {
		fmt.Fprintf(&cfg, "    server node%d %s check port %s %s\n", i+1, n.Addr, n.ReadyPort, n.SendProxy)
	}
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &LockedBuffer{}
	cmd := exec.Command(path, "-f", file, "-db")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start haproxy: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("haproxy:\n%s", out)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("haproxy exited: %v\n%s\nconfig:\n%s", err, out, cfg.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", front, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s after 5 s:\n%s", front, out)
		}
	}
}

// LockedBuffer is a bytes.Buffer safe for concurrent use: a relay's or a
// tool's output read while it writes.
type LockedBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Tail is the last n bytes written, from the start of a line.
func (l *LockedBuffer) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	if len(b) <= n {
		return string(b)
	}
	b = b[len(b)-n:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return "…\n" + string(b)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// FleetClient is one producer's account of what it sent and what was
// acknowledged. Safe for concurrent use.
type FleetClient struct {
	Name  string
	mu    sync.Mutex            // protects the fields below
	sent  map[int]time.Time     // seq -> first send
	acked map[int]time.Duration // seq -> wait from first send to acknowledgement; -1: not known
	// resent counts records the client library gave up on and the
	// shipper sent again (as libbeat's pipeline does), errs why.
	resent int
	errs   map[string]int
	retry  chan int // seqs to send again
}

func NewFleetClient(name string) *FleetClient {
	return &FleetClient{Name: name, sent: map[int]time.Time{}, acked: map[int]time.Duration{}, errs: map[string]int{}, retry: make(chan int, 1<<16)}
}

// Value is the record of seq: the client's name (the tag), " #", its
// number, and filler as a log line would have.
func (c *FleetClient) Value(seq int) []byte {
	return fmt.Appendf(nil, "%s #%06d %s", c.Name, seq, strings.Repeat("fleet of relays behind one address ", 4))
}

// SeqOf reads the number back from a Value.
func SeqOf(value []byte) (int, bool) {
	_, rest, ok := bytes.Cut(value, []byte(" #"))
	if !ok || len(rest) < 6 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:6]))
	return n, err == nil
}

// Ack records the acknowledgement of seq (the first one counts).
func (c *FleetClient) Ack(seq int) {
	c.mu.Lock()
	if _, ok := c.acked[seq]; !ok {
		c.acked[seq] = time.Since(c.sent[seq])
	}
	c.mu.Unlock()
}

// Failed queues seq to be sent again.
func (c *FleetClient) Failed(seq int, err error) {
	c.mu.Lock()
	c.resent++
	c.errs[err.Error()]++
	c.mu.Unlock()
	c.retry <- seq
}

// Outstanding is how many records sent are not acknowledged.
func (c *FleetClient) Outstanding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sent) - len(c.acked)
}

// AckAllSent counts every record sent as acknowledged with a wait not
// known, for a client that reports no ack per record (kcat): Check then
// takes the wait from when the record was stored.
func (c *FleetClient) AckAllSent() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for seq := range c.sent {
		if _, ok := c.acked[seq]; !ok {
			c.acked[seq] = -1
		}
	}
}

// Run sends a new record every interval, and records to send again as
// they come (an interval apart, so a library that fails at once is not
// spun on), until stop is closed.
func (c *FleetClient) Run(interval time.Duration, stop <-chan struct{}, send func(seq int)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := 0; ; {
		select {
		case <-stop:
			return
		case s := <-c.retry:
			time.Sleep(interval)
			send(s)
		case <-tick.C:
			c.mu.Lock()
			if _, ok := c.sent[seq]; !ok {
				c.sent[seq] = time.Now()
			}
			c.mu.Unlock()
			send(seq)
			seq++
		}
	}
}

// ResendUntil keeps sending records that failed until every record sent
// is acknowledged or the deadline passes; it reports whether all were.
func (c *FleetClient) ResendUntil(deadline time.Time, send func(seq int)) bool {
	for c.Outstanding() > 0 {
		select {
		case s := <-c.retry:
			time.Sleep(10 * time.Millisecond)
			send(s)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// Unstored is how many acknowledged records of c stored does not hold.
func (c *FleetClient) Unstored(stored func(seq int) []time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for seq := range c.acked {
		if len(stored(seq)) == 0 {
			n++
		}
	}
	return n
}

// FleetReport is what one client saw.
type FleetReport struct {
	Name                    string
	Sent, Acked, Duplicates int
	Resent                  int
	Errs                    map[string]int
	Worst, P99              time.Duration
	// ByStore: some waits were not reported by the client and are taken
	// from when the record was stored (see AckAllSent).
	ByStore bool
}

func (r FleetReport) String() string {
	what := "ack wait"
	if r.ByStore {
		what = "send to store (bounds the ack wait)"
	}
	return fmt.Sprintf("%-8s sent %5d, acknowledged %5d, stored twice %3d, resent by the shipper %3d %v; %s: worst %v, p99 %v",
		r.Name, r.Sent, r.Acked, r.Duplicates, r.Resent, r.Errs, what, r.Worst.Round(time.Millisecond), r.P99.Round(time.Millisecond))
}

// Check fails the test for every acknowledged record of c that is not
// stored, and reports c's waits. stored gives the times seq's copies were
// stored (none: lost); a wait not known is taken to the stored time
// picked by at (the first copy, or the last).
func (c *FleetClient) Check(t testing.TB, stored func(seq int) []time.Time, at func([]time.Time) time.Time) FleetReport {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	rep := FleetReport{Name: c.Name, Sent: len(c.sent), Acked: len(c.acked), Resent: c.resent, Errs: maps.Clone(c.errs)}
	var lost []int
	var waits []time.Duration
	for seq, wait := range c.acked {
		copies := stored(seq)
		switch {
		case len(copies) == 0:
			lost = append(lost, seq)
		case len(copies) > 1:
			rep.Duplicates++
		}
		if wait < 0 && len(copies) > 0 {
			rep.ByStore = true
			wait = at(copies).Sub(c.sent[seq])
			c.acked[seq] = wait
		}
		waits = append(waits, wait)
	}
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Errorf("%s: %d acknowledged records are not stored, e.g. #%d", c.Name, len(lost), lost[0])
	}
	slices.Sort(waits)
	if len(waits) > 0 {
		rep.Worst = waits[len(waits)-1]
		rep.P99 = waits[len(waits)*99/100]
	}
	if rep.Worst > FleetMaxAckWait {
		t.Errorf("%s waited %v for an acknowledgement, more than the %v a shipper may", c.Name, rep.Worst.Round(time.Millisecond), FleetMaxAckWait)
	}
	if rep.Acked == 0 {
		t.Errorf("%s had nothing acknowledged", c.Name)
	}
	return rep
}

// LogWorst logs the n records that waited longest, with when they were
// sent, to tie a wait to the event that caused it.
func (c *FleetClient) LogWorst(t testing.TB, start time.Time, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seqs := slices.Collect(maps.Keys(c.acked))
	slices.SortFunc(seqs, func(a, b int) int { return int(c.acked[b] - c.acked[a]) })
	for _, seq := range seqs[:min(n, len(seqs))] {
		t.Logf("  %s #%d sent at %.2fs waited %v", c.Name, seq, c.sent[seq].Sub(start).Seconds(), c.acked[seq].Round(time.Millisecond))
	}
}

// Earliest and Latest pick a copy's time for Check.
func Earliest(ts []time.Time) time.Time { return slices.MinFunc(ts, time.Time.Compare) }
func Latest(ts []time.Time) time.Time   { return slices.MaxFunc(ts, time.Time.Compare) }

// FleetPlan is how long each phase of a fleet test lasts.
type FleetPlan struct {
	Interval time.Duration // between two records of one shipper
	Warmup   time.Duration // before the first kill
	Down     time.Duration // a node stays down before its restart
	Settle   time.Duration // after a restart, before the next event
	Linger   time.Duration // the drain's linger (limits.drain_linger)
}

// FleetPlanFromEnv is the short plan of the normal suite (nodes down 1 s,
// a 2 s linger: a request read just before the drain must be answered
// before the check 300 ms ahead of the linger's end, and under a loaded
// test run an fsync alone has taken longer than 700 ms), or with SLSRELAY_LONG_TESTS=1 the issue's: nodes down
// 5 s, a 5 s linger.
func FleetPlanFromEnv() FleetPlan {
	if os.Getenv("SLSRELAY_LONG_TESTS") == "1" {
		return FleetPlan{Interval: 5 * time.Millisecond, Warmup: 3 * time.Second, Down: 5 * time.Second, Settle: 5 * time.Second, Linger: 5 * time.Second}
	}
	return FleetPlan{Interval: 10 * time.Millisecond, Warmup: time.Second, Down: time.Second, Settle: 1500 * time.Millisecond, Linger: 2 * time.Second}
}
