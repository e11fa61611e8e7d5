package engine

// Shared pieces of the overload tests (overload_test.go): memory readings
// of this process (the relay runs in the test process, so its RSS and heap
// are the relay's plus the test clients'), a well-behaved client that keeps
// producing and records its ack latencies while hostile clients attack,
// a slow appender, a fixed throttler, and a Kafka client that reports
// errors instead of failing the test, for use from goroutines.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// rssBytes is this process's resident set (VmRSS).
func rssBytes(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("cannot read /proc/self/status (RSS): %v", err)
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest) // "123456", "kB"
			if len(f) == 2 {
				if n, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil {
					return n * kib
				}
			}
		}
	}
	t.Fatalf("no VmRSS in /proc/self/status")
	return 0
}

// heapInuse is the Go heap in use (runtime.MemStats.HeapInuse).
func heapInuse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// settledHeap collects garbage twice and returns the heap in use, for a
// baseline or a reading after a phase.
func settledHeap() int64 {
	runtime.GC()
	runtime.GC()
	return heapInuse()
}

func fmtMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/mib) }

// memPeaks samples RSS, the heap in use and the engine's buffered bytes
// until stopped, keeping the maxima.
type memPeaks struct {
	stop chan struct{}
	done chan struct{}
	// Maxima, readable after stop.
	rss, heap, budget int64
	// heapMinusBudget is the largest heap in use beyond what the budget
	// held at the same moment (gnet's buffers, responses, clients…).
	heapMinusBudget int64
}

func sampleMem(t testing.TB, srv *Server, every time.Duration) *memPeaks {
	t.Helper()
	p := &memPeaks{stop: make(chan struct{}), done: make(chan struct{})}
	rss := func() int64 { return rssBytes(t) }
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			h := heapInuse()
			var b int64
			if srv != nil {
				b = srv.budget.used.Load()
			}
			p.heap, p.budget = max(p.heap, h), max(p.budget, b)
			p.heapMinusBudget = max(p.heapMinusBudget, h-b)
			p.rss = max(p.rss, rss())
			select {
			case <-tick.C:
			case <-p.stop:
				return
			}
		}
	}()
	t.Cleanup(p.end)
	return p
}

func (p *memPeaks) end() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// apiVersionsReq is the request every client sends first.
func apiVersionsReq() *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "overload-test", "1.0"
	return req
}

// prober is a well-behaved client: one connection producing small acks=1
// batches to testTopic4 partition 3 one after the other, recording each
// ack's latency, until stopped.
type prober struct {
	stop chan struct{}
	done chan struct{}
	lat  []time.Duration
	acks int // records acknowledged
	err  error
}

func startProber(t testing.TB, addr string) *prober {
	t.Helper()
	k, err := kafkatest.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.RoundTrip(apiVersionsReq(), 10*time.Second); err != nil {
		t.Fatalf("prober: ApiVersions: %v", err)
	}
	p := &prober{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer k.Close()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			req := kafkatest.ProduceRequest(7, 1, testTopic4, map[int32][]byte{3: kafkatest.RecordBatch(fmt.Sprintf("probe-%d", i))})
			start := time.Now()
			resp, err := k.RoundTrip(req, 20*time.Second)
			if err == nil {
				err = kafkatest.CheckProduced(resp)
			}
			if err != nil {
				p.err = fmt.Errorf("probe %d: %w", i, err)
				return
			}
			p.lat = append(p.lat, time.Since(start))
			p.acks++
			// A shipper's pace, not a flood: the probe measures, it does
			// not add load.
			select {
			case <-time.After(5 * time.Millisecond):
			case <-p.stop:
				return
			}
		}
	}()
	t.Cleanup(func() { p.end() })
	return p
}

func (p *prober) end() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// finish stops the prober, fails the test if it got no answers or an
// error, logs its latencies and returns their p99.
func (p *prober) finish(t testing.TB, during string) time.Duration {
	t.Helper()
	p.end()
	if p.err != nil {
		t.Errorf("well-behaved client during %s: %v", during, p.err)
	}
	if len(p.lat) == 0 {
		t.Errorf("well-behaved client got no answer during %s", during)
		return 0
	}
	s := slices.Clone(p.lat)
	slices.Sort(s)
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))] }
	t.Logf("well-behaved client during %s: %d acks, latency p50 %v, p99 %v, max %v",
		during, len(s), q(0.50).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), s[len(s)-1].Round(10*time.Microsecond))
	return q(0.99)
}

// slowAppender completes every append after delay, like a disk that is
// slow to sync, holding the entries in memory meanwhile.
type slowAppender struct {
	*MemoryAppender
	delay time.Duration
}

func (a slowAppender) Append(k wal.StreamKey, e *wal.Entry, durable bool, done func(int64, error)) {
	a.MemoryAppender.Append(k, e, durable, func(base int64, err error) {
		time.AfterFunc(a.delay, func() { done(base, err) })
	})
}

// fixedThrottler throttles every Produce to one logstore for d.
type fixedThrottler struct {
	logstore string
	d        time.Duration
	calls    atomic.Int64
}

func (f *fixedThrottler) ThrottleTime(k wal.StreamKey, _ int) time.Duration {
	f.calls.Add(1)
	if k.Logstore == f.logstore {
		return f.d
	}
	return 0
}

// raiseNofile raises this process's open-file limit to at least n (the
// hard limit too, which root may), or skips the test.
func raiseNofile(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	want := lim
	want.Cur = n
	want.Max = max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		t.Skipf("needs %d open files: RLIMIT_NOFILE is %d (hard %d) and cannot be raised: %v", n, lim.Cur, lim.Max, err)
	}
	t.Logf("raised RLIMIT_NOFILE from %d (hard %d) to %d", lim.Cur, lim.Max, n)
}

// loopbackSources are source addresses for many connections; Linux
// answers on all of 127.0.0.0/8.
var loopbackSources = []net.IP{{127, 0, 0, 1}, {127, 0, 0, 2}, {127, 0, 0, 3}, {127, 0, 0, 4}}

// fanOut runs fn(i) for i in [0, n) on workers goroutines and returns
// the first error.
func fanOut(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// records sums the records of entries.
func recordsOf(es []wal.Entry) int {
	n := 0
	for _, e := range es {
		n += int(e.Records)
	}
	return n
}

// The crowd of idle connections lives in a child process (this test
// binary run again as TestOverloadClientProcess): each process then needs
// only one descriptor per connection, which fits where RLIMIT_NOFILE
// cannot be raised (no CAP_SYS_RESOURCE in a container, even as root),
// and this process's RSS is the relay's side alone.
//
// The child reads commands from stdin and answers on stdout with lines
// starting "crowd: ":
//
//	(at start)          crowd: ready            every connection answered ApiVersions
//	produce P B R       crowd: acked {json}     P connections pipeline B batches of R records
//	                    crowd: error text
//	(stdin closed)      the child closes everything and exits
const crowdEnv = "SLSRELAY_OVERLOAD_CROWD" // "addr,n"

type crowd struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startCrowd(t testing.TB, addr string, n int) *crowd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOverloadClientProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", crowdEnv, addr, n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &crowd{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	c.out.Buffer(nil, 1*mib)
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return c
}

// answer waits for the child's next "crowd: " line.
func (c *crowd) answer(t testing.TB, timeout time.Duration) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		for c.out.Scan() {
			if line, ok := strings.CutPrefix(c.out.Text(), "crowd: "); ok {
				got <- line
				return
			}
		}
		got <- "error: the client process ended"
	}()
	select {
	case line := <-got:
		if strings.HasPrefix(line, "error") {
			t.Fatalf("client process: %s", line)
		}
		return line
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		t.Fatalf("client process: no answer in %v", timeout)
		return ""
	}
}

// crowdAcked is what the child's producers got acknowledged, in records
// per "logstore/partition".
type crowdAcked map[string]int

// TestOverloadClientProcess is the child's side of startCrowd; run
// directly it does nothing.
func TestOverloadClientProcess(t *testing.T) {
	spec := os.Getenv(crowdEnv)
	if spec == "" {
		t.Skip("the client process of TestOverloadIdleConnections")
	}
	addr, ns, _ := strings.Cut(spec, ",")
	n, _ := strconv.Atoi(ns)
	say := func(format string, args ...any) { fmt.Printf("crowd: "+format+"\n", args...) }
	conns := make([]*kafkatest.Conn, n)
	err := fanOut(n, 64, func(i int) error {
		k, err := kafkatest.DialFrom(loopbackSources[i%len(loopbackSources)], addr)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns[i] = k
		if _, err := k.RoundTrip(apiVersionsReq(), 30*time.Second); err != nil {
			return fmt.Errorf("connection %d: ApiVersions: %w", i, err)
		}
		return nil
	})
	if err != nil {
		say("error %v", err)
		return
	}
	say("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var p, b, r int
		if _, err := fmt.Sscanf(in.Text(), "produce %d %d %d", &p, &b, &r); err != nil {
			say("error bad command %q", in.Text())
			continue
		}
		acked, err := crowdProduce(conns, p, b, r)
		if err != nil {
			say("error %v", err)
			continue
		}
		j, _ := json.Marshal(acked)
		say("acked %s", j)
	}
	for _, k := range conns {
		k.Close()
	}
}

// crowdProduce has p of conns (spread over them) each pipeline b acks=1
// batches of r records to one partition, then read the answers.
func crowdProduce(conns []*kafkatest.Conn, p, b, r int) (crowdAcked, error) {
	acked := crowdAcked{}
	var mu sync.Mutex
	err := fanOut(p, 100, func(i int) error {
		k := conns[i*(len(conns)/p)]
		topic, parts := testTopic, 2
		if i%2 == 1 {
			topic, parts = testTopic4, 4
		}
		part := int32(i % parts)
		var corrs []int32
		var reqs []kmsg.Request
		for bi := range b {
			vals := make([]string, r)
			for j := range vals {
				vals[j] = fmt.Sprintf("conn-%d-batch-%d-record-%d", i, bi, j)
			}
			req := kafkatest.ProduceRequest(7, 1, topic, map[int32][]byte{part: kafkatest.RecordBatch(vals...)})
			corr, err := k.Send(req)
			if err != nil {
				return fmt.Errorf("producer %d: send: %w", i, err)
			}
			corrs, reqs = append(corrs, corr), append(reqs, req)
		}
		for j, corr := range corrs {
			resp, err := k.Recv(corr, reqs[j], 30*time.Second)
			if err == nil {
				err = kafkatest.CheckProduced(resp)
			}
			if err != nil {
				return fmt.Errorf("producer %d batch %d: %w", i, j, err)
			}
			mu.Lock()
			acked[fmt.Sprintf("%s/%d", topic, part)] += r
			mu.Unlock()
		}
		return nil
	})
	return acked, err
}

// kdialTLS dials a SASL_SSL listener and authenticates with SASL PLAIN
// (SaslHandshake v1 + SaslAuthenticate) unless noAuth.
func kdialTLS(addr string, cfg *tls.Config, noAuth bool) (*kafkatest.Conn, error) {
	k, err := kafkatest.Dial(addr, cfg)
	if err != nil || noAuth {
		return k, err
	}
	resp, err := k.SASLPlain(testProject, testAKID+"#"+testSecret)
	if err == nil && resp.ErrorCode != 0 {
		err = fmt.Errorf("SaslAuthenticate: error %d", resp.ErrorCode)
	}
	if err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

// dialAs connects to the relay's listener of that name ("PLAINTEXT" or
// "SASL_SSL", then authenticated), failing the test on error.
func (r *testRelay) dialAs(t testing.TB, listener string) *kafkatest.Conn {
	t.Helper()
	var k *kafkatest.Conn
	var err error
	switch listener {
	case "PLAINTEXT":
		k, err = kafkatest.Dial(r.plain, nil)
	case "SASL_SSL":
		k, err = kdialTLS(r.saslSSL, r.tls, false)
	default:
		t.Fatalf("no listener %q", listener)
	}
	if err != nil {
		t.Fatalf("%s: %v", listener, err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// knownBugsEnv runs the tests that show open bugs (they fail until the
// bug is fixed; see knownBug).
const knownBugsEnv = "SLSRELAY_TEST_KNOWN_BUGS"

// knownBug skips a test that shows an open bug unless knownBugsEnv=1, so
// that the package stays green for everyone meanwhile. Remove the call
// with the fix.
func knownBug(t testing.TB, bug string) {
	t.Helper()
	if os.Getenv(knownBugsEnv) != "1" {
		t.Skipf("open bug, skipped (set %s=1 to run): %s", knownBugsEnv, bug)
	}
}

// gnetInbound measures what gnet holds in its inbound buffers (bytes read
// from sockets and not yet taken by a session), summed over a server's
// PLAINTEXT connections, by asking each connection's event loop (gnet's
// buffers may only be read there) every interval; it keeps the peak.
type gnetInbound struct {
	srv  *Server
	per  sync.Map // *session -> int64, the last reading
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleGnetInbound(t testing.TB, srv *Server, every time.Duration) *gnetInbound {
	g := &gnetInbound{srv: srv, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for {
			var sum int64
			srv.sessions.Range(func(k, _ any) bool {
				s := k.(*session)
				if gt, ok := s.t.(*gnetTransport); ok {
					_ = gt.c.Wake(func(c gnet.Conn, _ error) error {
						g.per.Store(s, int64(c.InboundBuffered()))
						return nil
					})
				}
				if v, ok := g.per.Load(s); ok {
					sum += v.(int64)
				}
				return true
			})
			g.peak.Store(max(g.peak.Load(), sum))
			select {
			case <-time.After(every):
			case <-g.stop:
				return
			}
		}
	}()
	t.Cleanup(g.end)
	return g
}

func (g *gnetInbound) end() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	<-g.done
}

// budgetDeadlock returns the stack of a goroutine stuck in the self-deadlock
// the budget had until acec452 (session.room holds s.mu and calls
// budget.full, which called budget.wake, which called s.unmute, which locks
// s.mu again), or "" if none is.
func budgetDeadlock() string {
	buf := make([]byte, 16*mib)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		u := strings.Index(g, "(*session).unmute")
		w := strings.Index(g, "(*budget).wake")
		f := strings.Index(g, "(*budget).full")
		r := strings.Index(g, "(*session).room")
		if strings.Contains(g, "sync.Mutex.Lock") && u >= 0 && u < w && w < f && f < r {
			return g
		}
	}
	return ""
}

// failHung fails the test with err, adding the stack of a goroutine stuck
// in the budget's former deadlock if one is.
func failHung(t testing.TB, err error) {
	t.Helper()
	if g := budgetDeadlock(); g != "" {
		t.Fatalf("%v — deadlocked: session.room holds s.mu while budget.full wakes the waiting sessions, s included:\n%s", err, g)
	}
	t.Fatal(err)
}
