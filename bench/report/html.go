package report

import (
	"fmt"
	"html"
	"io"
	"path/filepath"
	"sort"
	"strings"
)

// WriteHTML writes a self-contained page: the table, the ratios, and per
// scenario the time series of every target as inline SVG (no scripts).
func WriteHTML(w io.Writer, r *Report) error {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>slsrelay bench</title><style>
body{font-family:sans-serif;margin:20px;color:#222;max-width:1360px}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.bad{color:#c00;font-weight:bold}.ok{color:#080}
tr.met td.v{color:#080;font-weight:bold}tr.notmet td.v{color:#c00;font-weight:bold}tr.unmeasured td.v{color:#888}
.grid{display:flex;flex-wrap:wrap;gap:10px}.chart{background:#fff;border:1px solid #ddd}
h2{border-bottom:2px solid #ddd;padding-bottom:3px;margin-top:28px}.note{color:#555;font-size:12px}
</style></head><body>`)
	fmt.Fprintf(&b, `<h1>slsrelay bench</h1><p class="note">%s · %d CPUs (%s) · %d GiB · %s</p>`,
		r.Started.Format("2006-01-02 15:04:05 MST"), r.Host.CPUs, html.EscapeString(r.Host.CPUModel), r.Host.MemGiB, html.EscapeString(r.Host.GoVersion))
	if r.Previous != nil {
		fmt.Fprintf(&b, `<p class="note">Previous run: %s (%s), its figures beside this run's.</p>`,
			r.Previous.Started.Format("2006-01-02 15:04:05 MST"), html.EscapeString(filepath.Base(r.PreviousFile)))
	}
	writeVerdicts(&b, r)
	writeSummaryTable(&b, r)
	writeStageFloors(&b, r)
	writeComparison(&b, r)
	if rs := Ratios(r); len(rs) > 0 {
		b.WriteString(`<h2>Reference ratios</h2><p class="note">Raw MB/s acknowledged, each target under the same client load in the same session, as a multiple of the acknowledge-only endpoint (the ceiling for this load on this machine).</p><div class="grid">`)
		for _, x := range rs {
			var bars []Bar
			for _, run := range r.Runs {
				if run.Scenario != x.Scenario || run.Summary.Acked == 0 {
					continue
				}
				note := ""
				for _, p := range x.Pairs {
					if p[0] == run.Target {
						note = "(" + p[1] + ")"
					}
				}
				bars = append(bars, Bar{Label: run.Target, Value: run.Summary.RawMBps, Color: ColorFor(run.Target, 0), Note: note})
			}
			sort.SliceStable(bars, func(i, j int) bool { return targetRank(bars[i].Label) < targetRank(bars[j].Label) })
			b.WriteString(BarChart(x.Scenario+": raw MB/s", "MB/s", bars, 440))
		}
		b.WriteString(`</div>`)
	}
	if len(r.Reference) > 0 {
		b.WriteString(`<h2>Reference figures (measured on this kind of machine before the bench)</h2><ul class="note">`)
		for _, s := range r.Reference {
			fmt.Fprintf(&b, "<li>%s</li>", html.EscapeString(s))
		}
		b.WriteString(`</ul>`)
	}
	var scenarios []string
	seen := map[string]bool{}
	for _, run := range r.Runs {
		if !seen[run.Scenario] {
			seen[run.Scenario] = true
			scenarios = append(scenarios, run.Scenario)
		}
	}
	for _, sc := range scenarios {
		writeScenario(&b, r, sc)
	}
	b.WriteString(`</body></html>`)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSummaryTable(b *strings.Builder, r *Report) {
	b.WriteString(`<h2>Runs</h2><table><tr><th class="l">scenario</th><th class="l">target</th><th>conns</th><th>rec/s</th><th>raw MB/s</th><th>wire MB/s</th><th>ack p50 ms</th><th>p99</th><th>p99.9</th><th>e2e p50 ms</th><th>e2e p99</th><th>CPU s/GB target</th><th>stand-in</th><th>load gen</th><th>peak RSS MB</th><th>peak backlog MB</th><th>throttle s</th><th class="l">loss check</th></tr>`)
	for _, run := range r.Runs {
		s := run.Summary
		fmt.Fprintf(b, `<tr><td class="l">%s</td><td class="l">%s</td><td>%d</td>`, html.EscapeString(run.Scenario), html.EscapeString(run.Target), s.Conns)
		if run.Error != "" && s.Acked == 0 {
			fmt.Fprintf(b, `<td colspan="15" class="l bad">%s</td></tr>`, html.EscapeString(run.Error))
			continue
		}
		cpu, standIn, loadGen := CPUTexts(s)
		lossClass := "ok"
		if run.Loss == nil {
			lossClass = ""
		} else if !run.Loss.OK() {
			lossClass = "bad"
		}
		fmt.Fprintf(b, `<td>%.0f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%.0f</td><td>%s</td><td>%s</td><td class="l %s">%s</td></tr>`,
			s.RecPerSec, f1(s.RawMBps), f1(s.WireMBps), f2(s.AckP50), f2(s.AckP99), f2(s.AckP999),
			dash(s.E2EP50, f1), dash(s.E2EP99, f1), cpu, standIn, loadGen, s.PeakRSSMB, dash(s.PeakBacklog, f1), f1(s.ThrottleSec),
			lossClass, html.EscapeString(LossText(run)))
	}
	fmt.Fprintf(b, `</table><p class="note">%s e2e = send → stored in the SLS stand-in.</p>`, html.EscapeString(CPUNote))
}

func writeScenario(b *strings.Builder, r *Report, sc string) {
	var runs []*Run
	for _, run := range r.Runs {
		if run.Scenario == sc {
			runs = append(runs, run)
		}
	}
	fmt.Fprintf(b, `<h2>%s</h2>`, html.EscapeString(sc))
	if len(runs) > 0 {
		var set []string
		for k, v := range runs[0].Settings {
			set = append(set, k+"="+v)
		}
		sort.Strings(set)
		fmt.Fprintf(b, `<p class="note">%s</p>`, html.EscapeString(strings.Join(set, " · ")))
	}
	var outages []Window
	for _, run := range runs {
		outages = append(outages, run.Outages...)
	}
	chart := func(title, unit string, ss []Series, logY bool) {
		b.WriteString(LineChartBands(title, unit, ss, outages, logY, chartW, chartH))
	}
	// A run that did not start has no series and no process to show.
	own := func(run *Run) bool { return !run.Summary.CPUShared && len(run.Series) > 0 }
	shared := func(run *Run) bool { return run.Summary.CPUShared && len(run.Series) > 0 }
	b.WriteString(`<div class="grid">`)
	chart("throughput acknowledged (plain-file: see ratios)", UnitMBps, series(runs, notFile, func(s Sample) float64 { return s.RawMBps }), false)
	chart("ack latency p99", UnitMsLog, series(runs, nil, func(s Sample) float64 { return s.P99 }), true)
	// The relay's own process apart from in-process targets, whose figures
	// include the load generator and would flatten its line.
	if ss := series(runs, own, func(s Sample) float64 { return s.RSSMB }); len(ss) > 0 {
		chart("relay process memory (RSS)", UnitMB, ss, false)
		chart("relay process CPU", UnitCores, series(runs, own, func(s Sample) float64 { return s.CPU }), false)
	}
	if ss := series(runs, shared, func(s Sample) float64 { return s.RSSMB }); len(ss) > 0 {
		chart("bench process memory (load generator included)", UnitMB, ss, false)
	}
	for _, run := range runs {
		if run.Target != "relay-e2e" {
			continue
		}
		one := func(name, color string, dash bool, get func(Sample) float64, skipZero bool) Series {
			s := Series{Name: name, Color: color, Dash: dash}
			for _, p := range run.Series {
				if v := get(p); !skipZero || v > 0 {
					s.Points = append(s.Points, [2]float64{p.T, v})
				}
			}
			return s
		}
		chart("relay-e2e latency percentiles", UnitMsLog, []Series{
			one("ack p50", "#2ca02c", false, func(p Sample) float64 { return p.P50 }, false),
			one("ack p99", "#ff7f0e", false, func(p Sample) float64 { return p.P99 }, false),
			one("ack p99.9", "#d62728", false, func(p Sample) float64 { return p.P999 }, false),
			one("e2e p99", "#9467bd", true, func(p Sample) float64 { return p.E2EP99 }, true),
		}, true)
		chart("relay-e2e CPU by process", UnitCores, []Series{
			one("relay", "#1f77b4", false, func(p Sample) float64 { return p.CPU }, false),
			one("SLS stand-in", "#ff7f0e", false, func(p Sample) float64 { return p.StandInCPU }, false),
			one("load generator (bench)", "#7f7f7f", true, func(p Sample) float64 { return p.BenchCPU }, false),
		}, false)
		chart("relay-e2e WAL backlog", UnitMB, []Series{one("WAL backlog", "#8c564b", false, func(p Sample) float64 { return p.BacklogMB }, false)}, false)
		chart("relay-e2e throttle imposed on shippers", UnitMsPerS, []Series{one("throttle", "#17becf", false, func(p Sample) float64 { return p.Throttle }, false)}, false)
		chart("relay-e2e acked vs delivered to SLS", UnitRecPerS, []Series{
			one("acked", "#d62728", false, func(p Sample) float64 { return p.RecPerSec }, false),
			one("delivered", "#9467bd", true, func(p Sample) float64 { return p.Delivered }, false),
		}, false)
	}
	b.WriteString(`</div>`)
	for _, run := range runs {
		if run.Loss != nil {
			l := run.Loss
			cls := "ok"
			if !l.OK() {
				cls = "bad"
			}
			fmt.Fprintf(b, `<p class="%s">Loss check (%s): %d acknowledged, %d received in the stand-in, %d missing, %d duplicates, %d received without an ack; backlog drained: %v.`,
				cls, html.EscapeString(run.Target), l.Acked, l.Received, l.Missing, l.Duplicates, l.Unacked, l.Drained)
			if len(l.FirstMiss) > 0 {
				fmt.Fprintf(b, ` First missing ids: %v.`, l.FirstMiss)
			}
			b.WriteString(`</p>`)
		}
		for _, n := range run.Notes {
			fmt.Fprintf(b, `<p class="note">%s: %s</p>`, html.EscapeString(run.Target), html.EscapeString(n))
		}
		if run.Error != "" {
			fmt.Fprintf(b, `<p class="bad">%s: %s</p>`, html.EscapeString(run.Target), html.EscapeString(run.Error))
		}
	}
}

// Chart sizes and the y axis units: each chart has one.
const (
	chartW, chartH = 440, 250

	UnitMBps    = "MB/s"
	UnitMsLog   = "ms (log scale)"
	UnitMB      = "MB"
	UnitCores   = "CPU cores"
	UnitMsPerS  = "ms/s"
	UnitRecPerS = "records/s"
)

func notFile(run *Run) bool { return run.Target != "plain-file" }

// series is one line per run that keep accepts (nil: all).
func series(runs []*Run, keep func(*Run) bool, get func(Sample) float64) []Series {
	var out []Series
	for i, run := range runs {
		if keep != nil && !keep(run) {
			continue
		}
		s := Series{Name: run.Target, Color: ColorFor(run.Target, i)}
		for _, p := range run.Series {
			s.Points = append(s.Points, [2]float64{p.T, get(p)})
		}
		out = append(out, s)
	}
	return out
}
