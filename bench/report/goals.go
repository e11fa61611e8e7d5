package report

import "fmt"

// Goal is one figure the issues set for the bench, checked per scenario.
// The figures come from the project's issues: #16 (end to end ≥ 0.9× and
// ack path ≥ 0.95× the acknowledge-only endpoint, the relay's own CPU
// ≤ 4 s/GB on steady) and #12 (burst ack p99 and p99.9 ≤ 1.5× the
// acknowledge-only endpoint's), and #6 (every acknowledged record in SLS).
type Goal struct {
	ID   string // stable key, to match a previous report's verdict
	Text string // the goal as the verdict table states it
	// Scenarios it applies to; empty: every scenario of the report.
	Scenarios []string
	// Measure returns the scenario's figure, its text and whether it meets
	// the goal; ok false when the runs it needs are missing or failed.
	Measure func(runs map[string]*Run) (value float64, text string, met, ok bool)
}

// Goals are checked in this order, each in each of its scenarios.
var Goals = []Goal{
	{ID: "e2e-ratio", Text: "relay end to end ≥ 0.90× the ack-only endpoint (raw MB/s)",
		Scenarios: []string{"steady", "old-clients", "sasl-ssl"},
		Measure:   throughputRatio("relay-e2e", 0.90)},
	{ID: "ack-ratio", Text: "relay ack path ≥ 0.95× the ack-only endpoint (raw MB/s)",
		Measure: throughputRatio("relay-ack", 0.95)},
	{ID: "cpu-per-gb", Text: "relay's own CPU ≤ 4 s per GB of raw logs, end to end",
		Scenarios: []string{"steady"},
		Measure: func(runs map[string]*Run) (float64, string, bool, bool) {
			e := runs["relay-e2e"]
			if !usable(e) {
				return 0, "", false, false
			}
			s := e.Summary
			text := fmt.Sprintf("%.1f s/GB", s.CPUSecPerGB)
			if s.CPUShared {
				// In the bench's process the load generator is counted too:
				// not the relay's own figure.
				return s.CPUSecPerGB, text + " (shared with the load generator)", false, false
			}
			return s.CPUSecPerGB, text, s.CPUSecPerGB <= 4, true
		}},
	{ID: "burst-p99", Text: "burst: relay end-to-end ack p99 ≤ 1.5× the ack-only endpoint's",
		Scenarios: []string{"burst"},
		Measure:   latencyRatio(func(s Summary) float64 { return s.AckP99 }, 1.5)},
	{ID: "burst-p999", Text: "burst: relay end-to-end ack p99.9 ≤ 1.5× the ack-only endpoint's",
		Scenarios: []string{"burst"},
		Measure:   latencyRatio(func(s Summary) float64 { return s.AckP999 }, 1.5)},
	{ID: "no-loss", Text: "0 acknowledged records missing in SLS, backlog drained",
		Measure: func(runs map[string]*Run) (float64, string, bool, bool) {
			e := runs["relay-e2e"]
			if e == nil || e.Loss == nil {
				return 0, "", false, false
			}
			return float64(e.Loss.Missing), LossText(e), e.Loss.OK() && e.Loss.Drained, true
		}},
}

// usable: the run exists and acknowledged something.
func usable(r *Run) bool { return r != nil && r.Summary.Acked > 0 }

// throughputRatio: target's raw MB/s over ack-only's, at least min.
func throughputRatio(target string, min float64) func(map[string]*Run) (float64, string, bool, bool) {
	return func(runs map[string]*Run) (float64, string, bool, bool) {
		t, base := runs[target], runs[RatioBase]
		if !usable(t) || !usable(base) || base.Summary.RawMBps == 0 {
			return 0, "", false, false
		}
		v := t.Summary.RawMBps / base.Summary.RawMBps
		return v, fmt.Sprintf("%.2f× (%.1f of %.1f MB/s)", v, t.Summary.RawMBps, base.Summary.RawMBps), v >= min, true
	}
}

// latencyRatio: relay-e2e's latency over ack-only's, at most max.
func latencyRatio(get func(Summary) float64, max float64) func(map[string]*Run) (float64, string, bool, bool) {
	return func(runs map[string]*Run) (float64, string, bool, bool) {
		t, base := runs["relay-e2e"], runs[RatioBase]
		if !usable(t) || !usable(base) || get(base.Summary) == 0 {
			return 0, "", false, false
		}
		v := get(t.Summary) / get(base.Summary)
		text := fmt.Sprintf("%.2f× (%.1f ms against %.1f ms", v, get(t.Summary), get(base.Summary))
		if f := runs["ack-fsync"]; usable(f) {
			// The disk's own share of a durable acknowledgement, beside.
			text += fmt.Sprintf("; ack-fsync %.1f ms", get(f.Summary))
		}
		return v, text + ")", v <= max, true
	}
}

// Verdict is one goal in one scenario.
type Verdict struct {
	Goal     Goal
	Scenario string
	Value    float64
	Measured string // "" when not measured
	State    string // VerdictMet, VerdictNotMet or VerdictNotMeasured
}

// Verdict states.
const (
	VerdictMet         = "met"
	VerdictNotMet      = "not met"
	VerdictNotMeasured = "not measured"
)

// Verdicts checks every goal in each scenario it applies to. A scenario
// the report did not run is listed as not measured only when the goal
// names it.
func Verdicts(r *Report) []Verdict {
	by := map[string]map[string]*Run{}
	var order []string
	for _, run := range r.Runs {
		if by[run.Scenario] == nil {
			by[run.Scenario] = map[string]*Run{}
			order = append(order, run.Scenario)
		}
		by[run.Scenario][run.Target] = run
	}
	var out []Verdict
	for _, g := range Goals {
		scs := g.Scenarios
		if len(scs) == 0 {
			scs = order
		}
		for _, sc := range scs {
			v := Verdict{Goal: g, Scenario: sc, State: VerdictNotMeasured}
			if runs := by[sc]; runs != nil {
				value, text, met, ok := g.Measure(runs)
				v.Measured = text
				if ok {
					v.Value, v.State = value, VerdictNotMet
					if met {
						v.State = VerdictMet
					}
				} else if text == "" && len(g.Scenarios) == 0 {
					continue // a scenario without the targets this goal compares
				}
			}
			out = append(out, v)
		}
	}
	return out
}

// previousVerdict finds the same goal and scenario in a previous report's
// verdicts.
func previousVerdict(prev []Verdict, v Verdict) (Verdict, bool) {
	for _, p := range prev {
		if p.Goal.ID == v.Goal.ID && p.Scenario == v.Scenario {
			return p, true
		}
	}
	return Verdict{}, false
}
