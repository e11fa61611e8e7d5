package main

// Shared pieces of the operations tests (ops_*_test.go): scraping and
// parsing the admin listener's /metrics, free loopback ports, and the real
// slsrelay binary run as a child process.

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// ---- /metrics ----

// opsSample is one exposition line: name{labels} value.
type opsSample struct {
	name   string
	labels map[string]string
	value  float64
}

// opsMetrics is a parsed /metrics scrape.
type opsMetrics []opsSample

// parseExposition parses Prometheus text exposition (version 0.0.4):
// comments and blank lines are skipped, every other line must be
// `name value` or `name{k="v",...} value` with an optional timestamp.
func parseExposition(text string) (opsMetrics, error) {
	var out opsMetrics
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n+1, line, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSample(line string) (opsSample, error) {
	s := opsSample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, errors.New("no value")
	}
	s.name = line[:i]
	for j, c := range s.name {
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 0 && c >= '0' && c <= '9') {
			return s, fmt.Errorf("bad metric name %q", s.name)
		}
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, errors.New("bad label")
			}
			key := rest[:eq]
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for k := 0; k < len(rest); k++ {
				c := rest[k]
				if c == '\\' && k+1 < len(rest) {
					k++
					switch rest[k] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[k])
					}
					continue
				}
				if c == '"' {
					rest, closed = rest[k+1:], true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return s, errors.New("unterminated label value")
			}
			if _, dup := s.labels[key]; dup {
				return s, fmt.Errorf("label %q twice", key)
			}
			s.labels[key] = val.String()
			rest = strings.TrimLeft(rest, " ")
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, "}") {
				return s, errors.New("labels not separated by ','")
			}
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return s, errors.New("want a value and an optional timestamp")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value: %w", err)
	}
	s.value = v
	return s, nil
}

// matches reports whether s is name with at least the label pairs kv.
func (s opsSample) matches(name string, kv []string) bool {
	if s.name != name {
		return false
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if v, ok := s.labels[kv[i]]; !ok || v != kv[i+1] {
			return false
		}
	}
	return true
}

// get sums the samples of name carrying the label pairs kv (k, v, k, v…);
// a metric not exposed (yet) counts 0.
func (m opsMetrics) get(name string, kv ...string) float64 {
	var sum float64
	for _, s := range m {
		if s.matches(name, kv) {
			sum += s.value
		}
	}
	return sum
}

// has reports whether some sample of name carries the label pairs kv.
func (m opsMetrics) has(name string, kv ...string) bool {
	for _, s := range m {
		if s.matches(name, kv) {
			return true
		}
	}
	return false
}

var opsHTTP = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// httpGet fetches http://addr/path and returns the status and body.
func httpGet(addr, path string) (int, string, error) {
	resp, err := opsHTTP.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// scrape reads and parses /metrics of the admin listener at addr.
func scrape(t testing.TB, addr string) opsMetrics {
	t.Helper()
	resp, err := opsHTTP.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics: Content-Type %q, want text/plain (Prometheus text format)", ct)
	}
	m, err := parseExposition(string(b))
	if err != nil {
		t.Fatalf("/metrics is not valid exposition text: %v", err)
	}
	return m
}

// ---- loopback ports ----

// freeAddr returns a loopback address with a port that was free a moment
// ago (listen on :0, close). The child binary needs fixed ports in its
// configuration; another process taking the port in between is unlikely.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ---- TLS files ----

// certPool reads a PEM CA file into a pool.
func certPool(t testing.TB, caFile string) *x509.CertPool {
	t.Helper()
	pool, err := kafkatest.CertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// copyFile replaces dst with src's content the way a certificate manager
// does: write beside it, then rename over it.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// ---- the binary as a child process ----

// opsBin is the slsrelay binary built for the tests that run it, shared
// by those running at the same time and removed when the last one ends.
var opsBin struct {
	mu   sync.Mutex
	refs int
	dir  string
	path string
}

// slsrelayBinary returns the binary built from ./ (cmd/slsrelay: the tests
// run in that directory), with the race detector when the tests run under
// it, so the child is checked too (a few seconds from the build cache).
func slsrelayBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	opsBin.mu.Lock()
	defer opsBin.mu.Unlock()
	if opsBin.refs == 0 {
		dir, err := os.MkdirTemp("", "slsrelay-ops-")
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "slsrelay")
		args := []string{"build", "-o", bin}
		if opsRace {
			args = append(args, "-race")
		}
		args = append(args, ".")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		if err != nil {
			os.RemoveAll(dir)
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("built %s in %v (race: %v)", bin, time.Since(start).Round(time.Millisecond), opsRace)
		opsBin.dir, opsBin.path = dir, bin
	}
	opsBin.refs++
	t.Cleanup(func() {
		opsBin.mu.Lock()
		defer opsBin.mu.Unlock()
		if opsBin.refs--; opsBin.refs == 0 {
			os.RemoveAll(opsBin.dir)
		}
	})
	return opsBin.path
}

// opsLog collects a child's output and lets a test wait for a line.
type opsLog struct {
	mu     sync.Mutex
	b      bytes.Buffer
	change chan struct{}
}

func newOpsLog() *opsLog { return &opsLog{change: make(chan struct{})} }

func (l *opsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.change)
	l.change = make(chan struct{})
	return len(p), nil
}

func (l *opsLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the lines holding every one of subs.
func (l *opsLog) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// wait waits until more than after lines hold every one of subs and
// returns the first new one.
func (l *opsLog) wait(t testing.TB, timeout time.Duration, after int, subs ...string) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ch := l.change
		l.mu.Unlock()
		if ls := l.lines(subs...); len(ls) > after {
			return ls[after]
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("after %v: no log line with %q", timeout, subs)
		}
	}
}

// child is the slsrelay binary running as a separate process.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr *opsLog
	done           chan struct{}
	err            error // the Wait result, once done is closed
	start          time.Time
}

// childEnv is the test's environment without proxy settings, plus extra.
// The race detector of a -race child stops it at the first race (exit 66).
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "GORACE":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "GORACE=halt_on_error=1")
	return append(env, extra...)
}

// startChild runs `bin -config cfgPath`; the test's end kills it if it
// still runs and, on failure, shows what it logged.
func startChild(t testing.TB, name, bin, cfgPath string, env []string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, "-config", cfgPath), stdout: newOpsLog(), stderr: newOpsLog(), done: make(chan struct{})}
	c.cmd.Env = env
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	c.start = time.Now()
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, c.stdout, name, c.stderr)
		}
	})
	return c
}

// quit makes a hung child dump its goroutines (SIGQUIT) into its stderr
// and exit, so that a failure shows where it hung.
func (c *child) quit() {
	_ = c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

func (c *child) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// exited waits up to timeout for the child to end and returns its exit
// code (-1: killed by a signal); ok is false if it still runs.
func (c *child) exited(timeout time.Duration) (code int, ok bool) {
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// waitReady polls /readyz of the child's admin listener until 200.
func (c *child) waitReady(t testing.TB, admin string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-c.done:
			t.Fatalf("the child exited (%v) before it was ready", c.err)
		default:
		}
		if code, _, err := httpGet(admin, "/readyz"); err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: /readyz of the child never answered 200", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoSecret fails if the child's stderr (its log) holds secret. The
// welcome banner on stdout prints the stand-in's demo password on purpose
// (for a person trying it), so only the log is checked.
func (c *child) checkNoSecret(t testing.TB, name, secret string) {
	t.Helper()
	log := c.stderr.String()
	if log == "" {
		t.Errorf("%s logged nothing on stderr: the secret check would prove nothing", name)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, secret) {
			t.Errorf("%s logged the AccessKeySecret: %s", name, line)
		}
	}
}
