package targets

import (
	"bytes"
	"fmt"
	"strings"

	vm "github.com/VictoriaMetrics/metrics"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
)

// Looking into the relay child while the bench runs (where does its ack
// latency go while the writers deliver?):
//
//	SLSBENCH_RELAY_PROFILE=/tmp/p  CPU profile in /tmp/p.cpu, execution
//	                               trace in /tmp/p.trace, for the child's life
//	SLSBENCH_RELAY_ENV="GODEBUG=gctrace=1 GOGC=200"  environment
//	                               variables of the child alone
//	SLSBENCH_RELAY_SCHED=1         on exit, the child's scheduling latency,
//	                               GC pauses, fsync and Produce durations
//	SLSBENCH_RELAY_HOLD=1          relay-e2e with delivery held (RelaySpec)
//
// The variables are read by the bench process and its relay child alike
// (the child inherits the environment).
const (
	ProfileEnv = "SLSBENCH_RELAY_PROFILE"
	ChildEnv   = "SLSBENCH_RELAY_ENV"
	HoldEnv    = "SLSBENCH_RELAY_HOLD"
)

// profileChild starts a CPU profile and an execution trace into
// prefix.cpu and prefix.trace (nothing if prefix is empty); the function
// returned stops both.
func profileChild(prefix string) (stop func(), err error) {
	if prefix == "" {
		return func() {}, nil
	}
	cpu, err := os.Create(prefix + ".cpu")
	if err != nil {
		return nil, fmt.Errorf("cannot create CPU profile: %w", err)
	}
	tr, err := os.Create(prefix + ".trace")
	if err != nil {
		cpu.Close()
		return nil, fmt.Errorf("cannot create trace: %w", err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		tr.Close()
		return nil, fmt.Errorf("cannot start CPU profile: %w", err)
	}
	if err := trace.Start(tr); err != nil {
		pprof.StopCPUProfile()
		cpu.Close()
		tr.Close()
		return nil, fmt.Errorf("cannot start trace: %w", err)
	}
	return func() {
		trace.Stop()
		pprof.StopCPUProfile()
		tr.Close()
		cpu.Close()
	}, nil
}

// SchedEnv, when set, makes the child print on exit, to stderr, the
// quantiles of its goroutines' scheduling latency and of its GC pauses
// (runtime/metrics) and its fsync and Produce durations, so that runs can
// be compared on each.
const SchedEnv = "SLSBENCH_RELAY_SCHED"

func printSchedLatencies() {
	samples := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/sched/pauses/total/gc:seconds"}, {Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/mark/assist:cpu-seconds"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"}}
	metrics.Read(samples)
	printRelayHistograms()
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindFloat64Histogram:
			h := s.Value.Float64Histogram()
			fmt.Fprintf(os.Stderr, "relay child %s: %s\n", s.Name, histQuantiles(h))
		case metrics.KindUint64:
			fmt.Fprintf(os.Stderr, "relay child %s: %d\n", s.Name, s.Value.Uint64())
		case metrics.KindFloat64:
			fmt.Fprintf(os.Stderr, "relay child %s: %.3f\n", s.Name, s.Value.Float64())
		}
	}
}

// printRelayHistograms prints the relay's fsync and Produce durations
// (its /metrics histograms) on one line each.
func printRelayHistograms() {
	var b bytes.Buffer
	vm.WritePrometheus(&b, false)
	lines := map[string]string{}
	for _, l := range strings.Split(b.String(), "\n") {
		for _, name := range []string{"slsrelay_wal_fsync_duration_seconds_bucket", "slsrelay_produce_duration_seconds_bucket"} {
			if strings.HasPrefix(l, name) {
				le := l[strings.Index(l, `le="`)+4:]
				lines[name] += " ≤" + le[:strings.IndexByte(le, '"')] + ":" + l[strings.LastIndexByte(l, ' ')+1:]
			}
		}
	}
	for name, l := range lines {
		fmt.Fprintf(os.Stderr, "relay child %s:%s\n", name, l)
	}
}

func histQuantiles(h *metrics.Float64Histogram) string {
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	out := fmt.Sprintf("n=%d", total)
	for _, q := range []float64{0.5, 0.99, 0.999, 0.9999} {
		want := uint64(q * float64(total))
		var seen uint64
		for i, c := range h.Counts {
			seen += c
			if seen > want {
				out += fmt.Sprintf(" p%g≤%.3gms", q*100, h.Buckets[i+1]*1e3)
				break
			}
		}
	}
	return out
}
