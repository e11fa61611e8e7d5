// Package report holds the results of a bench session and writes them as
// a terminal table, a JSON file and a self-contained HTML page with inline
// SVG charts.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one bench session: several runs (scenario × target).
type Report struct {
	Started   time.Time `json:"started"`
	Host      Host      `json:"host"`
	Runs      []*Run    `json:"runs"`
	Reference []string  `json:"reference"` // reference figures measured before the bench, quoted
	// Previous is the report of the run before this one, read from the
	// output directory (FindPrevious); the HTML shows its figures beside
	// this run's. PreviousFile names it in the JSON.
	Previous     *Report `json:"-"`
	PreviousFile string  `json:"previousFile,omitempty"`
	Stages       []Stage `json:"stages,omitempty"` // floor of each stage, MeasureStages
}

// Host describes the machine.
type Host struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	GoVersion string `json:"goVersion"`
	MemGiB    int    `json:"memGiB"`
}

// Run is one scenario against one target.
type Run struct {
	Scenario string            `json:"scenario"`
	Target   string            `json:"target"`
	Settings map[string]string `json:"settings"`
	Seconds  float64           `json:"seconds"`
	Summary  Summary           `json:"summary"`
	Series   []Sample          `json:"series"`
	Loss     *Loss             `json:"loss,omitempty"`
	// Outages are the windows in which the SLS stand-in refused every
	// request, in seconds since the run started (the charts shade them).
	Outages []Window `json:"outages,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Summary is a run's totals. Latencies in ms; NaN-free (0 when unknown).
type Summary struct {
	Acked     int64   `json:"acked"`
	Failed    int64   `json:"failed"`
	RecPerSec float64 `json:"recPerSec"`
	RawMBps   float64 `json:"rawMBps"`  // value bytes acknowledged
	WireMBps  float64 `json:"wireMBps"` // Produce request bytes written
	AckP50    float64 `json:"ackP50ms"`
	AckP99    float64 `json:"ackP99ms"`
	AckP999   float64 `json:"ackP999ms"`
	AckMax    float64 `json:"ackMaxMs"`
	// A Produce request's round trip seen by its client (write start →
	// response read); 0 for the raw fleet, which does not time requests.
	ReqP99  float64 `json:"reqP99ms,omitempty"`
	ReqP999 float64 `json:"reqP999ms,omitempty"`
	E2EP50  float64 `json:"e2eP50ms,omitempty"`
	E2EP99  float64 `json:"e2eP99ms,omitempty"`
	E2EP999 float64 `json:"e2eP999ms,omitempty"`
	// CPU of the measured process; CPUShared when it is the bench's own
	// process (an in-process target: the load generator is included).
	CPUSeconds  float64 `json:"cpuSeconds"`
	CPUSecPerGB float64 `json:"cpuSecPerGB"` // per GB of raw bytes acknowledged
	CPUShared   bool    `json:"cpuShared"`
	// The SLS stand-in's process (relay-e2e), per GB of raw bytes
	// acknowledged; 0 without a stand-in.
	StandInCPUSeconds  float64 `json:"standInCpuSeconds,omitempty"`
	StandInCPUSecPerGB float64 `json:"standInCpuSecPerGB,omitempty"`
	// The bench's own process: the load generator, and the target too
	// when CPUShared.
	BenchCPUSeconds  float64 `json:"benchCpuSeconds"`
	BenchCPUSecPerGB float64 `json:"benchCpuSecPerGB"`
	PeakRSSMB        float64 `json:"peakRSSMB"`
	PeakBacklog      float64 `json:"peakBacklogMB"`
	Throttles        int64   `json:"throttles"`
	ThrottleSec      float64 `json:"throttleSeconds"` // throttle time imposed, summed over connections
	Conns            int     `json:"conns"`
}

// Sample is one second of a run.
type Sample struct {
	T         float64 `json:"t"` // seconds since the run started
	RecPerSec float64 `json:"recPerSec"`
	RawMBps   float64 `json:"rawMBps"`
	WireMBps  float64 `json:"wireMBps"`
	P50       float64 `json:"p50ms"`
	P99       float64 `json:"p99ms"`
	P999      float64 `json:"p999ms"`
	BacklogMB float64 `json:"backlogMB"`
	RSSMB     float64 `json:"rssMB"`
	Throttle  float64 `json:"throttleMs"` // throttle imposed in this second, summed
	Delivered float64 `json:"deliveredPerSec"`
	E2EP99    float64 `json:"e2eP99ms,omitempty"`
	// CPU is the measured process's CPU seconds in this second (1 = one
	// core busy): the relay's own when it runs as a child process.
	CPU float64 `json:"cpuCores"`
	// StandInCPU and BenchCPU are the same for the stand-in's process and
	// the bench's own (the load generator's).
	StandInCPU float64 `json:"standInCpuCores,omitempty"`
	BenchCPU   float64 `json:"benchCpuCores"`
}

// Window is a span of a run, in seconds since it started.
type Window struct {
	From float64 `json:"from"`
	To   float64 `json:"to"`
}

// Loss is the end-to-end check: every acknowledged id must be in the
// stand-in.
type Loss struct {
	Acked      int64   `json:"acked"`
	Received   int64   `json:"received"` // logs in the stand-in carrying a bench id
	Missing    int64   `json:"missing"`  // acknowledged, not received
	Duplicates int64   `json:"duplicates"`
	Unacked    int64   `json:"unackedReceived"` // received without an ack (fine: at least once)
	Drained    bool    `json:"drained"`         // the relay's backlog reached 0 before the check
	FirstMiss  []int64 `json:"firstMissing,omitempty"`
}

// OK reports a clean loss check.
func (l *Loss) OK() bool { return l != nil && l.Missing == 0 }

// Clean replaces NaN/Inf (JSON has no such numbers) with 0.
func Clean(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// WriteJSON writes r to path.
func WriteJSON(path string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable writes the verdicts, the summary table (one line per run),
// then the ratios.
func WriteTable(w io.Writer, r *Report) {
	writeVerdictLines(w, r)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "scenario\ttarget\tconns\trec/s\traw MB/s\twire MB/s\tack p50 ms\tp99\tp99.9\treq p99 / p99.9\te2e p99 ms\tCPU s/GB target\tstand-in\tload gen\tpeak RSS MB\tbacklog MB\tthrottle s\tloss\t")
	for _, run := range r.Runs {
		s := run.Summary
		if run.Error != "" && s.Acked == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%d\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\t\n", run.Scenario, run.Target, s.Conns, "error: "+short(run.Error, 40))
			continue
		}
		target, standIn, loadGen := CPUTexts(s)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t\n",
			run.Scenario, run.Target, s.Conns, s.RecPerSec, f1(s.RawMBps), f1(s.WireMBps),
			f2(s.AckP50), f2(s.AckP99), f2(s.AckP999), reqText(s), dash(s.E2EP99, f1), target, standIn, loadGen, s.PeakRSSMB,
			dash(s.PeakBacklog, f1), f1(s.ThrottleSec), LossText(run))
	}
	tw.Flush()
	fmt.Fprintln(w, "  "+CPUNote)
	if rs := Ratios(r); len(rs) > 0 {
		fmt.Fprintln(w, "\nratios (raw MB/s, same run, same client load):")
		for _, x := range rs {
			fmt.Fprintf(w, "  %-16s %s\n", x.Scenario, x.Text)
		}
	}
	WriteStages(w, r.Stages)
}

// CPUNote explains the CPU s/GB columns (CPUTexts).
const CPUNote = "CPU s/GB: CPU seconds per GB of raw logs acknowledged, each process apart, from /proc: target = the target's process " +
	"(a relay target's own child process), stand-in = relay-e2e's SLS stand-in, a child process of its own, " +
	"load gen = the bench's process, which drives the load. * the target runs in the bench's process: " +
	"its figure and the load generator's are the same process's."

// CPUTexts are a run's CPU s/GB columns: the target's process, the SLS
// stand-in's ("-" without one) and the bench's own (the load generator).
func CPUTexts(s Summary) (target, standIn, loadGen string) {
	target = f1(s.CPUSecPerGB)
	if s.CPUShared {
		target += "*"
	}
	return target, dash(s.StandInCPUSecPerGB, f1), dash(s.BenchCPUSecPerGB, f1)
}

// LossText is the loss column: "ok 0/N", "MISSING m/N" or "n/a".
func LossText(run *Run) string {
	l := run.Loss
	if l == nil {
		return "n/a"
	}
	s := fmt.Sprintf("0 missing of %d", l.Acked)
	if l.Missing > 0 {
		s = fmt.Sprintf("MISSING %d of %d", l.Missing, l.Acked)
	}
	if l.Duplicates > 0 {
		s += fmt.Sprintf(", %d dup", l.Duplicates)
	}
	if !l.Drained {
		s += " (not drained)"
	}
	return s
}

// Ratio compares the targets of one scenario.
type Ratio struct {
	Scenario string
	Text     string
	Pairs    [][2]string // target, "x.xx×"
}

// RatioBase is the target others are divided by: the acknowledge-only
// endpoint, the ceiling for the client load.
const RatioBase = "ack-only"

// Ratios lists, per scenario, each target's raw MB/s as a fraction of
// the ack-only endpoint's.
func Ratios(r *Report) []Ratio {
	by := map[string]map[string]float64{}
	var order []string
	for _, run := range r.Runs {
		if by[run.Scenario] == nil {
			by[run.Scenario] = map[string]float64{}
			order = append(order, run.Scenario)
		}
		if run.Summary.Acked > 0 {
			by[run.Scenario][run.Target] = run.Summary.RawMBps
		}
	}
	var out []Ratio
	for _, sc := range order {
		m := by[sc]
		base := m[RatioBase]
		if base == 0 || len(m) < 2 {
			continue
		}
		var names []string
		for t := range m {
			names = append(names, t)
		}
		sort.Slice(names, func(i, j int) bool { return targetRank(names[i]) < targetRank(names[j]) })
		x := Ratio{Scenario: sc}
		var parts []string
		for _, t := range names {
			v := fmt.Sprintf("%.2f×", m[t]/base)
			x.Pairs = append(x.Pairs, [2]string{t, v})
			parts = append(parts, fmt.Sprintf("%s %s", t, v))
		}
		x.Text = strings.Join(parts, "  ") + fmt.Sprintf("   (of ack-only %.1f MB/s)", base)
		out = append(out, x)
	}
	return out
}

// TargetOrder is the order targets are shown in.
var TargetOrder = []string{"relay-e2e", "relay-ack", "ack-only", "ack-fsync", "kfake", "plain-file"}

func targetRank(t string) int {
	for i, n := range TargetOrder {
		if n == t {
			return i
		}
	}
	return len(TargetOrder)
}

func f1(v float64) string { return fmt.Sprintf("%.1f", Clean(v)) }
func f2(v float64) string { return fmt.Sprintf("%.2f", Clean(v)) }
func dash(v float64, f func(float64) string) string {
	if Clean(v) == 0 {
		return "-"
	}
	return f(v)
}
func short(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// reqText is the Produce round trip's p99 / p99.9, "-" when not timed.
func reqText(s Summary) string {
	if s.ReqP99 == 0 {
		return "-"
	}
	return f2(s.ReqP99) + " / " + f2(s.ReqP999)
}
