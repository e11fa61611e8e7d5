package report

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// writeVerdicts is the report's first table: each goal in each scenario,
// measured, met or not, and the previous run's figure beside it.
func writeVerdicts(b *strings.Builder, r *Report) {
	vs, prev := verdictsAndPrevious(r)
	if len(vs) == 0 {
		return
	}
	met := 0
	for _, v := range vs {
		if v.State == VerdictMet {
			met++
		}
	}
	fmt.Fprintf(b, `<h2>Verdict: %d of %d goals met</h2>`, met, len(vs))
	b.WriteString(`<table class="verdicts"><tr><th class="l">goal</th><th class="l">scenario</th><th class="l">measured</th><th class="l">verdict</th>`)
	if r.Previous != nil {
		b.WriteString(`<th class="l">previous run</th>`)
	}
	b.WriteString(`</tr>`)
	for _, v := range vs {
		fmt.Fprintf(b, `<tr class="%s"><td class="l">%s</td><td class="l">%s</td><td class="l">%s</td><td class="l v">%s</td>`,
			strings.ReplaceAll(strings.ReplaceAll(v.State, "not measured", "unmeasured"), " ", ""),
			html.EscapeString(v.Goal.Text), html.EscapeString(v.Scenario), html.EscapeString(dashText(v.Measured)), v.State)
		if r.Previous != nil {
			text := "-"
			if p, ok := previousVerdict(prev, v); ok && p.Measured != "" {
				text = p.Measured + ", " + p.State
			}
			fmt.Fprintf(b, `<td class="l prev">%s</td>`, html.EscapeString(text))
		}
		b.WriteString(`</tr>`)
	}
	b.WriteString(`</table>`)
}

// writeComparison puts the previous run's main figures beside this run's,
// run by run (scenario and target).
func writeComparison(b *strings.Builder, r *Report) {
	if r.Previous == nil {
		return
	}
	b.WriteString(`<h2>This run beside the previous</h2><table class="previous"><tr><th class="l">scenario</th><th class="l">target</th>` +
		`<th>raw MB/s</th><th>previous</th><th>ack p99 ms</th><th>previous</th><th>e2e p99 ms</th><th>previous</th>` +
		`<th>CPU s/GB</th><th>previous</th><th>peak RSS MB</th><th>previous</th></tr>`)
	for _, run := range r.Runs {
		p := previousRun(r.Previous, run)
		if run.Summary.Acked == 0 && (p == nil || p.Summary.Acked == 0) {
			continue
		}
		fmt.Fprintf(b, `<tr><td class="l">%s</td><td class="l">%s</td>`, html.EscapeString(run.Scenario), html.EscapeString(run.Target))
		for _, get := range []func(Summary) float64{
			func(s Summary) float64 { return s.RawMBps },
			func(s Summary) float64 { return s.AckP99 },
			func(s Summary) float64 { return s.E2EP99 },
			func(s Summary) float64 { return s.CPUSecPerGB },
			func(s Summary) float64 { return s.PeakRSSMB },
		} {
			prevText := "-"
			if p != nil && p.Summary.Acked > 0 {
				prevText = dash(get(p.Summary), f1)
			}
			fmt.Fprintf(b, `<td>%s</td><td class="prev">%s</td>`, dash(get(run.Summary), f1), prevText)
		}
		b.WriteString(`</tr>`)
	}
	b.WriteString(`</table>`)
}

// writeVerdictLines is the verdict table for the terminal.
func writeVerdictLines(w io.Writer, r *Report) {
	vs, prev := verdictsAndPrevious(r)
	if len(vs) == 0 {
		return
	}
	fmt.Fprintln(w, "verdicts:")
	for _, v := range vs {
		line := fmt.Sprintf("  %-13s %-12s %-45s %s", v.State, v.Scenario, dashText(v.Measured), v.Goal.Text)
		if p, ok := previousVerdict(prev, v); ok && p.Measured != "" {
			line += fmt.Sprintf("   (previous: %s, %s)", p.Measured, p.State)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
}

// verdictsAndPrevious are r's verdicts and the previous report's (nil
// without one).
func verdictsAndPrevious(r *Report) (vs, prev []Verdict) {
	vs = Verdicts(r)
	if r.Previous != nil {
		prev = Verdicts(r.Previous)
	}
	return vs, prev
}

func dashText(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
