// Command slsbench is the bench harness: it drives a fleet of Kafka
// producers against the relay (end to end with the SLS stand-in, and its
// ack path alone) and against reference targets (an acknowledge-only
// endpoint, franz-go's kfake, a plain fsync'd file) in the same session,
// then writes a table, a JSON file and an HTML report under bench/out/.
//
//	slsbench -scenario steady -duration 20s
//	slsbench -scenario many-connections -conns 10000 -targets relay-e2e,ack-only
//	slsbench -standard          # what `make bench` runs
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/slsrelay/slsrelay/bench/harness"
	"github.com/slsrelay/slsrelay/bench/load"
	"github.com/slsrelay/slsrelay/bench/report"
	"github.com/slsrelay/slsrelay/bench/targets"
)

func main() {
	// The relay targets and relay-e2e's SLS stand-in run as child
	// processes of this same binary, so the CPU and RSS of each are its
	// own.
	targets.ExitIfChild()
	var (
		scenario  = flag.String("scenario", "steady", "scenario: steady, burst, outage, many-connections, many-connections-sasl-ssl, old-clients, sasl-ssl")
		standard  = flag.Bool("standard", false, "run the standard set (steady, burst, old-clients, sasl-ssl against every target, and a shortened outage)")
		duration  = flag.Duration("duration", 20*time.Second, "load duration per target")
		outage    = flag.Duration("outage", 0, "length of the SLS outage of the outage scenario (default 60s)")
		conns     = flag.Int("conns", 0, "producer connections (default: the scenario's)")
		rate      = flag.Float64("rate", -1, "offered records/s (0: as fast as acks allow; default: the scenario's)")
		acks      = flag.Int("acks", 0, "acks: 1 or -1 (default: the scenario's)")
		profile   = flag.String("profile", "", "client profile: beats or telegraf (default: the scenario's)")
		tgts      = flag.String("targets", "", "comma-separated targets (default: the scenario's): "+strings.Join(harness.AllTargets, ","))
		out       = flag.String("out", "bench/out", "output directory")
		inProcess = flag.Bool("in-process", false, "run the relay in this process instead of a child (CPU/RSS then include the load generator; relay-e2e's stand-in stays a child)")
		slsQuota  = flag.Bool("sls-quota", false, "pace the relay's writers to SLS's per-shard quota (5 MB/s, 500 writes/s per shard)")
		drain     = flag.Duration("drain", 120*time.Second, "longest wait for the relay's backlog to reach the stand-in before the loss check")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	type job struct {
		sc  harness.Scenario
		dur time.Duration
	}
	var jobs []job
	if *standard {
		for _, n := range []string{"steady", "burst", "old-clients", "sasl-ssl"} {
			sc, _ := harness.Lookup(n)
			jobs = append(jobs, job{sc, *duration})
		}
		sc, _ := harness.Lookup("outage")
		sc.Outage = 15 * time.Second
		if *outage > 0 {
			sc.Outage = *outage
		}
		jobs = append(jobs, job{sc, sc.Outage + 2**duration})
	} else {
		sc, err := harness.Lookup(*scenario)
		if err != nil {
			fatal(err)
		}
		d := *duration
		if sc.Outage > 0 {
			if *outage > 0 {
				sc.Outage = *outage
			}
			if d < sc.Outage+10*time.Second {
				d = sc.Outage + 20*time.Second
				fmt.Fprintf(os.Stderr, "outage scenario: running %v so the outage sits inside the run\n", d)
			}
		}
		if *conns > 0 {
			sc.Conns = *conns
		}
		if *rate >= 0 {
			sc.Pace.Rate = *rate
		}
		if *acks != 0 {
			sc.Acks = *acks
		}
		if *profile != "" {
			p, ok := load.Profiles[*profile]
			if !ok {
				fatal(fmt.Errorf("unknown profile %q", *profile))
			}
			sc.Profile = p
		}
		if *tgts != "" {
			sc.Targets = strings.Split(*tgts, ",")
		}
		jobs = append(jobs, job{sc, d})
	}

	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	relayExe := exe
	if *inProcess {
		relayExe = ""
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fatal(err)
	}
	rep := &report.Report{Started: time.Now(), Host: host(), Reference: reference}
	for _, j := range jobs {
		fmt.Fprintf(os.Stderr, "== %s: %s\n", j.sc.Name, j.sc.Description)
		runs := harness.Run(ctx, harness.Options{
			Scenario: j.sc, Duration: j.dur, WorkDir: filepath.Join(*out, "work"), RelayExe: relayExe, StandInExe: exe,
			Progress: os.Stderr, DrainTimeout: *drain, SLSQuota: *slsQuota,
		})
		rep.Runs = append(rep.Runs, runs...)
	}
	os.RemoveAll(filepath.Join(*out, "work"))
	// The run before this one, if its report is in the output directory:
	// the report shows its figures beside this run's.
	if prev, path, err := report.FindPrevious(*out); err != nil {
		fmt.Fprintln(os.Stderr, "slsbench: previous report not compared:", err)
	} else if prev != nil {
		rep.Previous, rep.PreviousFile = prev, filepath.Base(path)
	}
	stages, err := report.MeasureStages()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stage floors:", err)
	}
	rep.Stages = stages
	report.WriteTable(os.Stdout, rep)
	// The outage's figures (bench/harness/outage.go) are notes: say them.
	for _, r := range rep.Runs {
		for _, n := range r.Notes {
			if strings.HasPrefix(n, "after the outage") {
				fmt.Printf("  %s/%s: %s\n", r.Scenario, r.Target, n)
			}
		}
	}
	stamp := rep.Started.Format("20060102-150405")
	jsonPath := filepath.Join(*out, "bench-"+stamp+".json")
	htmlPath := filepath.Join(*out, "bench-"+stamp+".html")
	if err := report.WriteJSON(jsonPath, rep); err != nil {
		fatal(err)
	}
	f, err := os.Create(htmlPath)
	if err != nil {
		fatal(err)
	}
	if err := report.WriteHTML(f, rep); err != nil {
		fatal(err)
	}
	f.Close()
	// Stable names for the latest run.
	for src, dst := range map[string]string{jsonPath: "latest.json", htmlPath: "report.html"} {
		b, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(*out, dst), b, 0o644)
	}
	var tb strings.Builder
	report.WriteTable(&tb, rep)
	os.WriteFile(filepath.Join(*out, "table.txt"), []byte(tb.String()), 0o644)
	fmt.Printf("\nwrote %s, %s, %s\n", jsonPath, htmlPath, filepath.Join(*out, "table.txt"))
	for _, r := range rep.Runs {
		if r.Loss != nil && !r.Loss.OK() {
			fmt.Fprintf(os.Stderr, "LOSS: %s/%s: %d acknowledged records missing\n", r.Scenario, r.Target, r.Loss.Missing)
			os.Exit(2)
		}
	}
}

var reference = []string{
	"Loopback on this VM: ~30 Gbit/s. Disk: ~390 MB/s sequential with fdatasync, ~270 MB/s in 64 KiB synchronous writes.",
	"A Kafka producer (franz-go, 8 connections, 1 KiB records) against a broker that only acknowledges: ~800 MB/s gzip, ~960 MB/s uncompressed.",
	"klite (a Go Kafka-protocol server with a fsync'd WAL): ~540 MB/s at acks=1, 1 KiB records, on 4 vCPU.",
	"SLS limits: per shard ~5 MB/s (10 without index) and 500 writes/s; a LogGroup at most 5 MB; a request at most 10 MB raw.",
	"aliyun-log-go-sdk's own producer: ~70 MB/s of raw logs per core.",
}

func host() report.Host {
	h := report.Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Fscanf(f, "MemTotal: %d kB", &kb)
		h.MemGiB = int((kb + 1<<19) >> 20)
		f.Close()
	}
	return h
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "slsbench:", err)
	os.Exit(1)
}
