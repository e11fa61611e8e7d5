//go:build unix

package shardwriter

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
)

// The writer benchmark's SLS stand-in runs in its own process by default
// (this test binary, started again with wbStandInEnv set), so that the
// CPU the benchmark measures with getrusage(RUSAGE_SELF) is the client's
// alone: the stand-in's lz4 decompression, MD5 check and protobuf scan
// are SLS's work, not the relay's. -writerbench.standin=inprocess runs it
// in the benchmark's process, as before (then both clients' figures
// include it). The stand-in's own CPU per MB is reported as
// standin-cpu-ms/MB.

var wbStandInMode = flag.String("writerbench.standin", "process", `where BenchmarkWriterVsSDKProducer's SLS stand-in runs: "process" (its own) or "inprocess"`)

const wbStandInEnv = "SHARDWRITER_BENCH_STANDIN"

// wbServer is the stand-in as the benchmarks use it.
type wbServer interface {
	Stats() slsfake.Stats
	Logs(project, logstore string) []slsfake.StoredLog
	HTTPClient() *http.Client
	Endpoint() string
	// cpu is the CPU time the stand-in's own process used, 0 in process.
	cpu(b *testing.B) time.Duration
}

func init() {
	if os.Getenv(wbStandInEnv) != "" {
		os.Exit(wbServeStandIn())
	}
}

// wbStandInConfig is the benchmarks' stand-in: quotas off (the clients are
// measured, not SLS's quota), stored logs bounded.
func wbStandInConfig() slsfake.Config {
	cfg := slsfake.DefaultConfig()
	cfg.DefaultQuota = &slsfake.Quota{}
	cfg.MaxStoredBytes = wbStoredCap
	return cfg
}

// wbServeStandIn is the stand-in process: it prints its address and SDK
// endpoint on one line, and serves until its stdin closes.
func wbServeStandIn() int {
	s, err := slsfake.New(wbStandInConfig())
	if err == nil {
		err = s.Start("127.0.0.1:0")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stand-in:", err)
		return 1
	}
	fmt.Printf("%s %s\n", s.Addr(), s.Endpoint())
	bufio.NewReader(os.Stdin).ReadString(0) // until EOF
	s.Close()
	return 0
}

type wbLocal struct{ *slsfake.Server }

func (wbLocal) cpu(*testing.B) time.Duration { return 0 }

// wbStandIn starts the benchmarks' stand-in where -writerbench.standin says.
func wbStandIn(b *testing.B) wbServer {
	if *wbStandInMode == "inprocess" {
		s, err := slsfake.New(wbStandInConfig())
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start("127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return wbLocal{s}
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), wbStandInEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("cannot start the stand-in process: %v", err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 2 {
		b.Fatalf("the stand-in process said %q: %v", line, err)
	}
	host, _, err := net.SplitHostPort(f[1])
	if err != nil {
		b.Fatal(err)
	}
	return &wbRemote{addr: f[0], endpoint: f[1], host: host, pid: cmd.Process.Pid, hc: &http.Client{Timeout: 30 * time.Second}}
}

// wbRemote is the stand-in in its own process, reached through its
// control API (bench/slsfake/control.go).
type wbRemote struct {
	addr, endpoint, host string
	pid                  int
	hc                   *http.Client
}

func (r *wbRemote) HTTPClient() *http.Client { return slsfake.NewHTTPClient(r.addr, r.host) }
func (r *wbRemote) Endpoint() string         { return r.endpoint }

func (r *wbRemote) get(path string, v any) {
	resp, err := r.hc.Get("http://" + r.addr + path)
	if err != nil {
		panic(fmt.Sprintf("stand-in control API: %v", err))
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		panic(fmt.Sprintf("stand-in control API %s: %v", path, err))
	}
}

func (r *wbRemote) Stats() slsfake.Stats {
	var st slsfake.Stats
	r.get("/_stats", &st)
	return st
}

// Logs returns the newest 1000 logs (what the control API tails), with
// what wbCheckStoredFrom looks at.
func (r *wbRemote) Logs(project, logstore string) []slsfake.StoredLog {
	var tailed []struct {
		Time     string
		Source   string
		Topic    string
		Contents map[string]string
	}
	r.get("/_logs?project="+project+"&logstore="+logstore+"&tail=1000", &tailed)
	var out []slsfake.StoredLog
	for _, t := range tailed {
		tm, err := time.Parse(time.RFC3339Nano, t.Time)
		if err != nil {
			panic(err)
		}
		l := slsfake.StoredLog{Project: project, Logstore: logstore, Source: t.Source, Topic: t.Topic,
			Time: uint32(tm.Unix()), TimeNs: uint32(tm.Nanosecond()), HasTimeNs: true}
		for k, v := range t.Contents {
			l.Contents = append(l.Contents, slsfake.KV{Key: k, Value: v})
		}
		out = append(out, l)
	}
	return out
}

// cpu reads the stand-in process's user+system time from /proc (in
// clock ticks of 10 ms).
func (r *wbRemote) cpu(b *testing.B) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which may hold spaces.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
