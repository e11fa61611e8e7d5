package report

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Series is one line of a chart.
type Series struct {
	Name   string
	Color  string
	Points [][2]float64 // x, y
	Dash   bool
}

// Palette gives each target a stable color.
var Palette = map[string]string{
	"relay-e2e": "#d62728", "relay-ack": "#ff7f0e", "ack-only": "#2ca02c",
	"ack-fsync": "#98df8a", "kfake": "#1f77b4", "plain-file": "#7f7f7f",
}

var extra = []string{"#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"}

// ColorFor is a target's or a series' color.
func ColorFor(name string, i int) string {
	if c, ok := Palette[name]; ok {
		return c
	}
	return extra[i%len(extra)]
}

// niceStep is a 1/2/5×10^k step giving about n ticks over span.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a >= 1:
		return fmt.Sprintf("%.4g", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

// LineChart draws series as an inline SVG (w×h px): x in seconds, y
// linear from 0, or logarithmic when logY (values ≤ 0 skipped).
func LineChart(title, yLabel string, series []Series, logY bool, w, h int) string {
	return LineChartBands(title, yLabel, series, nil, logY, w, h)
}

// LineChartBands is LineChart with the outage windows shaded behind the
// lines (class "outage", clipped to the chart) and named in the legend.
// yLabel is the one unit of the y axis.
func LineChartBands(title, yLabel string, series []Series, outages []Window, logY bool, w, h int) string {
	const ml, mr, mt, mb = 62, 12, 28, 52
	pw, ph := float64(w-ml-mr), float64(h-mt-mb)
	xmax, ymax, ymin := 1.0, 0.0, math.Inf(1)
	any := false
	for _, s := range series {
		for _, p := range s.Points {
			if math.IsNaN(p[1]) || math.IsInf(p[1], 0) || (logY && p[1] <= 0) {
				continue
			}
			any = true
			xmax = math.Max(xmax, p[0])
			ymax = math.Max(ymax, p[1])
			ymin = math.Min(ymin, p[1])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, w, h, w, h)
	fmt.Fprintf(&b, `<text x="%d" y="16" font-size="13" font-weight="bold">%s</text>`, ml, html.EscapeString(title))
	if !any {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#888">no data</text></svg>`, w/2-20, h/2)
		return b.String()
	}
	// y scale
	var ylo, yhi float64
	var ticks []float64
	if logY {
		ylo = math.Pow(10, math.Floor(math.Log10(ymin)))
		yhi = math.Pow(10, math.Ceil(math.Log10(ymax)))
		if yhi <= ylo {
			yhi = ylo * 10
		}
		for v := ylo; v <= yhi*1.0001; v *= 10 {
			ticks = append(ticks, v)
		}
	} else {
		if ymax <= 0 {
			ymax = 1
		}
		step := niceStep(ymax, 5)
		yhi = math.Ceil(ymax/step) * step
		for v := 0.0; v <= yhi+step/2; v += step {
			ticks = append(ticks, v)
		}
	}
	yOf := func(v float64) float64 {
		if logY {
			return float64(mt) + ph*(1-(math.Log10(v)-math.Log10(ylo))/(math.Log10(yhi)-math.Log10(ylo)))
		}
		return float64(mt) + ph*(1-v/yhi)
	}
	xOf := func(v float64) float64 { return float64(ml) + pw*v/xmax }
	for _, o := range outages {
		from, to := math.Max(0, o.From), math.Min(xmax, o.To)
		if to <= from {
			continue
		}
		fmt.Fprintf(&b, `<rect class="outage" x="%.1f" y="%d" width="%.1f" height="%.0f" fill="#f4b6b6" fill-opacity="0.45"><title>SLS outage %s–%s s</title></rect>`,
			xOf(from), mt, xOf(to)-xOf(from), ph, fmtTick(o.From), fmtTick(o.To))
	}
	for _, t := range ticks {
		y := yOf(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`, ml, y, w-mr, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#444">%s</text>`, ml-4, y+4, fmtTick(t))
	}
	xstep := niceStep(xmax, 8)
	for v := 0.0; v <= xmax+xstep/100; v += xstep {
		x := xOf(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#f0f0f0"/>`, x, mt, x, mt+int(ph))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#444">%s</text>`, x, mt+int(ph)+14, fmtTick(v))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`, ml, mt, pw, ph)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#444">seconds</text>`, ml+int(pw/2), mt+int(ph)+27)
	fmt.Fprintf(&b, `<text class="ylabel" transform="translate(12,%d) rotate(-90)" text-anchor="middle" fill="#444">%s</text>`, mt+int(ph/2), html.EscapeString(yLabel))
	for _, s := range series {
		var pts []string
		for _, p := range s.Points {
			if math.IsNaN(p[1]) || math.IsInf(p[1], 0) || (logY && p[1] <= 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(p[0]), yOf(p[1])))
		}
		if len(pts) == 0 {
			continue
		}
		dash := ""
		if s.Dash {
			dash = ` stroke-dasharray="5,3"`
		}
		if len(pts) == 1 {
			var x, y float64
			fmt.Sscanf(pts[0], "%f,%f", &x, &y)
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, x, y, s.Color)
			continue
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8"%s points="%s"><title>%s</title></polyline>`,
			s.Color, dash, strings.Join(pts, " "), html.EscapeString(s.Name))
	}
	// legend under the x axis label
	lx := ml
	for _, s := range series {
		if len(s.Points) == 0 {
			continue
		}
		ly := h - 8
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`, lx, ly-4, lx+16, ly-4, s.Color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10">%s</text>`, lx+19, ly, html.EscapeString(s.Name))
		lx += 26 + 6*len(s.Name)
	}
	if len(outages) > 0 {
		ly := h - 8
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="16" height="8" fill="#f4b6b6"/><text x="%d" y="%d" font-size="10">SLS outage</text>`, lx, ly-8, lx+19, ly)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// Bar is one bar of a BarChart.
type Bar struct {
	Label string
	Value float64
	Color string
	Note  string
}

// BarChart draws horizontal bars as an inline SVG.
func BarChart(title, unit string, bars []Bar, w int) string {
	const rowH, ml, mr, mt = 22, 110, 150, 26
	h := mt + rowH*len(bars) + 8
	// The plain file (the disk) is usually far beyond the Kafka targets:
	// scale to the others and mark a bar past the edge with "»".
	max, all := 0.0, 0.0
	for _, x := range bars {
		all = math.Max(all, x.Value)
		if x.Label != "plain-file" {
			max = math.Max(max, x.Value)
		}
	}
	if max == 0 {
		max = all
	}
	if max == 0 {
		max = 1
	}
	max *= 1.1
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`, w, h)
	fmt.Fprintf(&b, `<text x="4" y="16" font-size="13" font-weight="bold">%s</text>`, html.EscapeString(title))
	pw := float64(w - ml - mr)
	for i, x := range bars {
		y := mt + i*rowH
		bw := pw * x.Value / max
		clip := ""
		if bw > pw {
			bw, clip = pw, "» "
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, ml-6, y+14, html.EscapeString(x.Label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, ml, y+2, bw, rowH-6, x.Color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s%s %s %s</text>`, float64(ml)+bw+4, y+14, clip, fmtTick(x.Value), html.EscapeString(unit), html.EscapeString(x.Note))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
