package engine

// What an idle connection costs the relay (issue 16): N connections open,
// authenticated, then silent, and the relay's memory before and after.
// The connections are opened by a child process (this test binary run as
// TestIdleFleetChild), so the figures hold only the relay's side of each
// connection, and each process needs only N descriptors.
//
//	go test -run '^$' -bench IdleConns -benchtime 1x ./engine/
//
// SLSRELAY_IDLE_CONNS sets N (default 10,000). It reports KiB per
// connection of RSS and of Go heap + stacks, and goroutines per
// connection. Not a timed assertion: a figure to read.
// SLSRELAY_IDLE_HEAPPROFILE=file writes a heap profile per case with the
// connections open.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

func BenchmarkIdleConns(b *testing.B) {
	n := 10000
	if v := os.Getenv("SLSRELAY_IDLE_CONNS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("SLSRELAY_IDLE_CONNS=%q: %v", v, err)
		}
	}
	for _, tc := range []struct {
		name    string
		produce bool // each connection sends one 64 KiB Produce before idling
	}{
		{"sasl_ssl/authenticated", false},
		{"sasl_ssl/after_produce", true},
		{"plaintext/after_produce", true},
	} {
		b.Run(fmt.Sprintf("%s/conns=%d", tc.name, n), func(b *testing.B) {
			const idleAfter = 200 * time.Millisecond
			r := startRelay(b, func(o *Options) { o.TLSIdleAfter = idleAfter })
			r.app.Discard = true
			addr, ca := r.saslSSL, r.caFile
			if strings.HasPrefix(tc.name, "plaintext") {
				addr, ca = r.plain, ""
			}
			before := relayMemory()
			openIdleFleet(b, addr, ca, n, tc.produce, func() int { return openSessions(r.srv) })
			time.Sleep(5 * idleAfter) // idle, not just between two requests
			after := relayMemory()
			if f := os.Getenv("SLSRELAY_IDLE_HEAPPROFILE"); f != "" {
				writeHeapProfile(b, f+"."+strings.ReplaceAll(tc.name, "/", "_"))
			}
			b.ReportMetric(float64(after.stacks-before.stacks)/float64(n)/1024, "stack-KiB/conn")
			b.ReportMetric(float64(after.rss-before.rss)/float64(n)/1024, "rss-KiB/conn")
			b.ReportMetric(float64(after.heapStacks-before.heapStacks)/float64(n)/1024, "heap+stack-KiB/conn")
			b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/conn")
		})
	}
}

type memoryFigures struct {
	rss, heapStacks, stacks uint64
	goroutines              int
}

// relayMemory is this process's memory once the garbage is collected and
// given back (a few cycles, which also shrink idle goroutines' stacks).
func relayMemory() memoryFigures {
	for range 10 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memoryFigures{rss: processRSS(), heapStacks: ms.HeapInuse + ms.StackInuse, stacks: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// processRSS reads VmRSS from /proc/self/status (0 where there is none).
func processRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, _ := strconv.ParseUint(f[1], 10, 64)
			return kib << 10
		}
	}
	return 0
}

// writeHeapProfile writes what is live now to file (SLSRELAY_IDLE_HEAPPROFILE
// names it; run with -memprofilerate 1 for every allocation).
func writeHeapProfile(b *testing.B, file string) {
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func openSessions(srv *Server) int {
	n := 0
	srv.sessions.Range(func(any, any) bool { n++; return true })
	return n
}

// openIdleFleet starts the child holding n connections to addr (TLS with
// SASL PLAIN when ca is set) and returns once the relay has them all open
// and, with produce, has answered one Produce on each. The child is ended
// when b ends.
func openIdleFleet(b *testing.B, addr, ca string, n int, produce bool, open func() int) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleFleetChild$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("SLSRELAY_IDLE_FLEET=%s,%s,%d,%t", addr, ca, n, produce))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr kafkatest.LockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close() // the child exits when its stdin closes
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if line := sc.Text(); line == "ready" {
			break
		} else if strings.HasPrefix(line, "failed") {
			b.Fatalf("idle fleet: %s\n%s", line, stderr.String())
		}
	}
	if sc.Err() != nil {
		b.Fatalf("idle fleet: %v\n%s", sc.Err(), stderr.String())
	}
	deadline := time.Now().Add(30 * time.Second)
	for open() < n {
		if time.Now().After(deadline) {
			b.Fatalf("relay has %d of %d connections open", open(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIdleFleetChild is the child of BenchmarkIdleConns: it does nothing
// unless SLSRELAY_IDLE_FLEET is set.
func TestIdleFleetChild(t *testing.T) {
	spec := os.Getenv("SLSRELAY_IDLE_FLEET")
	if spec == "" {
		t.Skip("the child process of BenchmarkIdleConns")
	}
	f := strings.Split(spec, ",")
	addr, ca := f[0], f[1]
	n, _ := strconv.Atoi(f[2])
	produce := f[3] == "true"
	var cfg *tls.Config
	if ca != "" {
		var err error
		if cfg, err = kafkatest.ClientTLS(ca); err != nil {
			fmt.Println("failed", err)
			return
		}
		cfg.ClientSessionCache = nil
	}
	values := make([]string, 64)
	for i := range values {
		values[i] = strings.Repeat("x", 1000)
	}
	req := kafkatest.ProduceRequest(7, 1, testTopic, map[int32][]byte{0: kafkatest.RecordBatch(values...)})

	conns := make([]*kafkatest.Conn, n)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() != nil {
					return
				}
				c, err := dialIdle(addr, cfg, i)
				if err == nil && cfg != nil {
					err = c.Authenticate(testProject, testAKID+"#"+testSecret)
				}
				if err == nil && produce {
					var resp kmsg.Response
					if resp, err = c.RoundTrip(req, 10*time.Second); err == nil {
						err = kafkatest.CheckProduced(resp)
					}
				}
				if err != nil {
					err = fmt.Errorf("connection %d: %w", i, err)
					failed.Store(&err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		fmt.Println("failed", *err)
		return
	}
	fmt.Println("ready")
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(os.Stdin) // until the parent closes it
	for _, c := range conns {
		c.Close()
	}
}

// dialIdle opens the i-th connection from 127.0.0.(2+i/20000), so that
// tens of thousands of connections do not run out of one source address's
// ephemeral ports.
func dialIdle(addr string, cfg *tls.Config, i int) (*kafkatest.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i/20000))}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return kafkatest.NewConn(c), nil
	}
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return kafkatest.NewConn(tc), nil
}
