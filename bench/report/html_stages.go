package report

import (
	"fmt"
	"html"
	"strings"
)

// writeStageFloors writes the "Stage floors" section: the floor of each
// stage from the WAL to PutLogs (MeasureStages), their sums per kind of
// input, and each relay run's CPU s/GB as a multiple of its input's sum.
// Nothing when the report has no stages.
func writeStageFloors(b *strings.Builder, r *Report) {
	if len(r.Stages) == 0 {
		return
	}
	b.WriteString(`<h2>Stage floors</h2><p class="note">The floor of each stage from the WAL to PutLogs, alone on one thread of this machine, in CPU ms per MB of raw logs (= CPU s per GB): the relay's CPU s/GB above is to be read against the sum for its input.</p>`)
	b.WriteString(`<table><tr><th class="l">stage</th><th>CPU s/GB</th><th class="l">note</th></tr>`)
	for _, s := range r.Stages {
		fmt.Fprintf(b, `<tr><td class="l">%s</td><td>%s</td><td class="l">%s</td></tr>`, html.EscapeString(s.Name), f2(s.CPUMsMB), html.EscapeString(s.Note))
	}
	plain, gz := stageSums(r.Stages)
	fmt.Fprintf(b, `<tr><th class="l">sum, uncompressed input</th><th>%s</th><th></th></tr><tr><th class="l">sum, gzip input</th><th>%s</th><th></th></tr></table>`, f2(plain), f2(gz))

	var rows strings.Builder
	for _, run := range r.Runs {
		s := run.Summary
		// The relay's own process only: an in-process target's CPU
		// includes the load generator.
		if s.CPUShared || s.Acked == 0 || Clean(s.CPUSecPerGB) == 0 {
			continue
		}
		compression := run.Settings["compression"]
		floor, ok := stageFloor(r.Stages, compression)
		times := "-"
		if ok && floor > 0 {
			times = fmt.Sprintf("%.1f×", s.CPUSecPerGB/floor)
		}
		fmt.Fprintf(&rows, `<tr><td class="l">%s</td><td class="l">%s</td><td class="l">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>`,
			html.EscapeString(run.Scenario), html.EscapeString(run.Target), html.EscapeString(dashText(compression)),
			f1(s.CPUSecPerGB), dash(floor, f2), times)
	}
	if rows.Len() > 0 {
		b.WriteString(`<p class="note">Each relay run's CPU s/GB against the floor of its input (no floor is measured for snappy, lz4 or zstd):</p>`)
		b.WriteString(`<table><tr><th class="l">scenario</th><th class="l">target</th><th class="l">input</th><th>CPU s/GB</th><th>floor s/GB</th><th>× floor</th></tr>`)
		b.WriteString(rows.String())
		b.WriteString(`</table>`)
	}
}
