package report

import (
	"bytes"
	"encoding/json"
	"html"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sample() *Report {
	r := &Report{Started: time.Unix(1700000000, 0), Host: Host{CPUs: 2, CPUModel: "test cpu", GoVersion: "go1.26"},
		Reference: []string{"Disk: ~390 MB/s"}}
	for i, tgt := range []string{"relay-e2e", "relay-ack", "ack-only", "kfake", "plain-file"} {
		run := &Run{Scenario: "steady", Target: tgt, Settings: map[string]string{"conns": "8"}, Seconds: 10}
		run.Summary = Summary{Acked: 1000, RecPerSec: 100, RawMBps: float64(10 * (i + 1)), AckP50: 1, AckP99: 5, AckP999: 9, Conns: 8}
		for s := 1; s <= 10; s++ {
			run.Series = append(run.Series, Sample{T: float64(s), RawMBps: float64(s * (i + 1)), P50: 1, P99: float64(s), P999: math.NaN(), RSSMB: 100, BacklogMB: float64(s)})
		}
		if tgt == "relay-e2e" {
			run.Loss = &Loss{Acked: 1000, Received: 999, Missing: 1, Drained: true, FirstMiss: []int64{42}}
			run.Summary.E2EP99 = 12
		}
		r.Runs = append(r.Runs, run)
	}
	r.Runs = append(r.Runs, &Run{Scenario: "old-clients", Target: "kfake", Error: "no record acknowledged"})
	return r
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	WriteTable(&b, sample())
	out := b.String()
	for _, want := range []string{"relay-e2e", "MISSING 1 of 1000", "n/a", "error: no record acknowledged",
		"ack-only 1.00×", "relay-e2e 0.33×", "plain-file 1.67×"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestHTML(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	if n := strings.Count(h, "<svg"); n < 7 { // ratio bars + 3 per-target charts + 3 relay-e2e charts
		t.Errorf("%d SVG charts", n)
	}
	for _, want := range []string{"<table>", "<td class=\"l\">relay-e2e</td>", "<polyline", "throughput acknowledged",
		"WAL backlog", "ack latency p99", "RSS", "MISSING 1 of 1000", "First missing ids: [42]", "Reference ratios", "Disk: ~390 MB/s"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"NaN", "<script", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(h, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("HTML contains %q (must be self-contained, no scripts, no NaN)", bad)
		}
	}
}

func TestJSON(t *testing.T) {
	r := sample()
	for _, run := range r.Runs {
		for i := range run.Series {
			run.Series[i].P999 = Clean(run.Series[i].P999)
		}
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(path, r); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != 6 || back.Runs[0].Loss.Missing != 1 || len(back.Runs[0].Series) != 10 {
		t.Fatalf("round trip lost data: %+v", back.Runs[0])
	}
}

func TestLineChartEdgeCases(t *testing.T) {
	if s := LineChart("empty", "y", nil, false, 300, 200); !strings.Contains(s, "no data") {
		t.Error("empty chart should say so")
	}
	s := LineChart("log", "ms", []Series{{Name: "a", Color: "#000", Points: [][2]float64{{0, 0}, {1, 0.5}, {2, 500}}}}, true, 300, 200)
	if strings.Contains(s, "NaN") || strings.Contains(s, "Inf") || !strings.Contains(s, "polyline") {
		t.Errorf("bad log chart: %s", s)
	}
	if niceStep(97, 5) != 20 || niceStep(0.7, 7) != 0.1 {
		t.Errorf("nice steps %v %v", niceStep(97, 5), niceStep(0.7, 7))
	}
}

// goalSample is a session whose verdicts are known: steady meets every
// goal, burst misses p99 (2.0×) but meets p99.9 (1.4×), old-clients
// misses end to end (0.80×), sasl-ssl did not run, and the outage run has
// a 5–9 s outage and lost nothing. The relays ran as child processes
// (30–40 MB), the in-process targets in the bench's (400 MB).
func goalSample() *Report {
	r := &Report{Started: time.Unix(1700000000, 0), Host: Host{CPUs: 2, CPUModel: "test cpu", GoVersion: "go1.26"}}
	add := func(sc, tgt string, mbps, p99, p999 float64, mod func(*Run)) {
		run := &Run{Scenario: sc, Target: tgt, Seconds: 20}
		run.Summary = Summary{Acked: 1000, RawMBps: mbps, AckP99: p99, AckP999: p999, CPUShared: !strings.HasPrefix(tgt, "relay-")}
		rss, cpu := 30.0, 0.8
		if run.Summary.CPUShared {
			rss, cpu = 400, 1.9
		}
		for s := 1; s <= 20; s++ {
			run.Series = append(run.Series, Sample{T: float64(s), RawMBps: mbps, P50: 1, P99: p99, P999: p999,
				RSSMB: rss + float64(s%3)*5, CPU: cpu, BacklogMB: float64(s), Throttle: 3, RecPerSec: 100, Delivered: 90})
		}
		if mod != nil {
			mod(run)
		}
		r.Runs = append(r.Runs, run)
	}
	lossless := func(run *Run) { run.Loss = &Loss{Acked: 1000, Received: 1000, Drained: true} }
	add("steady", "relay-e2e", 95, 5, 9, func(run *Run) { lossless(run); run.Summary.CPUSecPerGB = 3.5 })
	add("steady", "relay-ack", 99, 5, 9, nil)
	add("steady", "ack-only", 100, 5, 9, nil)
	add("steady", "kfake", 120, 5, 9, nil)
	add("burst", "relay-e2e", 50, 20, 14, lossless)
	add("burst", "relay-ack", 50, 10, 10, nil)
	add("burst", "ack-only", 50, 10, 10, nil)
	add("old-clients", "relay-e2e", 80, 5, 9, lossless)
	add("old-clients", "relay-ack", 96, 5, 9, nil)
	add("old-clients", "ack-only", 100, 5, 9, nil)
	add("outage", "relay-e2e", 5, 5, 9, func(run *Run) { lossless(run); run.Outages = []Window{{From: 5, To: 9}} })
	return r
}

func renderHTML(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// charts maps each SVG chart's title to its markup, per scenario section
// (the key is "scenario/title"; charts above the first section get "").
func charts(h string) map[string]string {
	out := map[string]string{}
	titleRe := regexp.MustCompile(`font-weight="bold">([^<]*)</text>`)
	section := ""
	for i, part := range strings.Split(h, "<svg") {
		if i > 0 {
			svg := part[:strings.Index(part, "</svg>")]
			if m := titleRe.FindStringSubmatch(svg); m != nil {
				out[section+"/"+html.UnescapeString(m[1])] = svg
			}
		}
		if i := strings.LastIndex(part, "<h2>"); i >= 0 {
			section = part[i+4 : i+strings.Index(part[i:], "</h2>")]
		}
	}
	return out
}

func TestVerdicts(t *testing.T) {
	vs := Verdicts(goalSample())
	f := func(goal, scenario, state, measured string) {
		t.Helper()
		for _, v := range vs {
			if v.Goal.ID == goal && v.Scenario == scenario {
				if v.State != state || !strings.Contains(v.Measured, measured) {
					t.Errorf("%s in %s: %s %q, want %s %q", goal, scenario, v.State, v.Measured, state, measured)
				}
				return
			}
		}
		t.Errorf("%s in %s: no verdict", goal, scenario)
	}
	f("e2e-ratio", "steady", VerdictMet, "0.95× (95.0 of 100.0 MB/s)")
	f("e2e-ratio", "old-clients", VerdictNotMet, "0.80×")
	f("e2e-ratio", "sasl-ssl", VerdictNotMeasured, "")
	f("ack-ratio", "steady", VerdictMet, "0.99×")
	f("ack-ratio", "old-clients", VerdictMet, "0.96×")
	f("ack-ratio", "burst", VerdictMet, "1.00×")
	f("cpu-per-gb", "steady", VerdictMet, "3.5 s/GB")
	f("burst-p99", "burst", VerdictNotMet, "2.00× (20.0 ms against 10.0 ms)")
	f("burst-p999", "burst", VerdictMet, "1.40×")
	// With an ack-fsync run, the disk's own figure is shown beside.
	p99 := latencyRatio(func(s Summary) float64 { return s.AckP99 }, 1.5)
	withDisk := map[string]*Run{
		"relay-e2e": {Summary: Summary{Acked: 1, AckP99: 20}},
		"ack-only":  {Summary: Summary{Acked: 1, AckP99: 10}},
		"ack-fsync": {Summary: Summary{Acked: 1, AckP99: 15}},
	}
	if _, text, met, ok := p99(withDisk); text != "2.00× (20.0 ms against 10.0 ms; ack-fsync 15.0 ms)" || met || !ok {
		t.Errorf("burst p99 with ack-fsync: %q, met %v, measured %v", text, met, ok)
	}
	f("no-loss", "outage", VerdictMet, "0 missing of 1000")
	for _, v := range vs {
		if v.Goal.ID == "ack-ratio" && v.Scenario == "outage" {
			t.Error("the outage scenario has no ack-only run: no ack-path verdict expected")
		}
	}

	// CPU counted in the bench's own process is not the relay's.
	r := goalSample()
	r.Runs[0].Summary.CPUShared = true
	for _, v := range Verdicts(r) {
		if v.Goal.ID == "cpu-per-gb" && v.State != VerdictNotMeasured {
			t.Errorf("shared CPU judged %s", v.State)
		}
	}
	// A lost record fails the goal.
	r.Runs[0].Loss.Missing = 1
	for _, v := range Verdicts(r) {
		if v.Goal.ID == "no-loss" && v.Scenario == "steady" && v.State != VerdictNotMet {
			t.Errorf("1 missing judged %s", v.State)
		}
	}
}

// The verdict table is the page's first table, under the first heading.
func TestHTMLVerdictTableFirst(t *testing.T) {
	h := renderHTML(t, goalSample())
	if i, j := strings.Index(h, "<table"), strings.Index(h, `<table class="verdicts">`); i < 0 || i != j {
		t.Fatalf("first table at %d, verdicts at %d", i, j)
	}
	if i, j := strings.Index(h, "<h2>"), strings.Index(h, "<h2>Verdict: 10 of 13 goals met</h2>"); i != j {
		t.Errorf("first heading at %d, verdict heading at %d:\n%s", i, j, h[i:i+80])
	}
	for _, row := range []string{
		`<tr class="notmet"><td class="l">burst: relay end-to-end ack p99 ≤ 1.5× the ack-only endpoint&#39;s</td><td class="l">burst</td><td class="l">2.00× (20.0 ms against 10.0 ms)</td><td class="l v">not met</td></tr>`,
		`<tr class="met"><td class="l">relay&#39;s own CPU ≤ 4 s per GB of raw logs, end to end</td><td class="l">steady</td><td class="l">3.5 s/GB</td><td class="l v">met</td></tr>`,
		`<td class="l">sasl-ssl</td><td class="l">-</td><td class="l v">not measured</td>`,
	} {
		if !strings.Contains(h, row) {
			t.Errorf("verdict table lacks %s", row)
		}
	}
	if strings.Contains(h, "DESIGN.md") {
		t.Error("the report names DESIGN.md, which the repository does not have")
	}
	var b bytes.Buffer
	WriteTable(&b, goalSample())
	if !strings.HasPrefix(b.String(), "verdicts:\n") || !strings.Contains(b.String(), "  not met       burst        2.00× (20.0 ms against 10.0 ms)") {
		t.Errorf("terminal table does not open with the verdicts:\n%s", b.String())
	}
}

// The outage window is a shaded band on every time chart of its
// scenario, where the window is on the x axis; other scenarios have none.
func TestHTMLOutageBands(t *testing.T) {
	cs := charts(renderHTML(t, goalSample()))
	band := regexp.MustCompile(`<rect class="outage" x="([0-9.]+)" y="[0-9]+" width="([0-9.]+)"`)
	n := 0
	for key, svg := range cs {
		m := band.FindStringSubmatch(svg)
		switch {
		case strings.HasPrefix(key, "outage/"):
			n++
			if m == nil {
				t.Errorf("%s: no outage band", key)
				continue
			}
			// Plot area from x=62 over 366 px for 0–20 s: 5–9 s is 91.5 px
			// in, 73.2 px wide.
			x, _ := strconv.ParseFloat(m[1], 64)
			w, _ := strconv.ParseFloat(m[2], 64)
			if math.Abs(x-(62+366*5.0/20)) > 0.2 || math.Abs(w-366*4.0/20) > 0.2 {
				t.Errorf("%s: band at x=%v width %v", key, x, w)
			}
			if !strings.Contains(svg, ">SLS outage</text>") {
				t.Errorf("%s: legend does not name the band", key)
			}
		case m != nil:
			t.Errorf("%s: a band without an outage", key)
		}
	}
	if n < 7 {
		t.Errorf("%d charts in the outage scenario", n)
	}
}

// The relay's own memory and CPU are charts of their own, scaled to the
// relay, not to the in-process targets' 400 MB.
func TestHTMLRelayOwnCharts(t *testing.T) {
	cs := charts(renderHTML(t, goalSample()))
	lines := regexp.MustCompile(`<polyline [^>]*><title>([^<]*)</title>`)
	ticks := regexp.MustCompile(`text-anchor="end" fill="#444">([0-9.]+)</text>`)
	f := func(key string, want []string, maxTop float64) {
		t.Helper()
		svg, ok := cs[key]
		if !ok {
			t.Errorf("no chart %q", key)
			return
		}
		var got []string
		for _, m := range lines.FindAllStringSubmatch(svg, -1) {
			got = append(got, m[1])
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: lines %v, want %v", key, got, want)
		}
		tk := ticks.FindAllStringSubmatch(svg, -1)
		top, _ := strconv.ParseFloat(tk[len(tk)-1][1], 64)
		if top > maxTop || top == 0 {
			t.Errorf("%s: y axis up to %v, want at most %v", key, top, maxTop)
		}
	}
	f("steady/relay process memory (RSS)", []string{"relay-e2e", "relay-ack"}, 50)
	f("steady/relay process CPU", []string{"relay-e2e", "relay-ack"}, 1)
	f("steady/bench process memory (load generator included)", []string{"ack-only", "kfake"}, 500)
	f("outage/relay process memory (RSS)", []string{"relay-e2e"}, 50)
	if _, ok := cs["outage/bench process memory (load generator included)"]; ok {
		t.Error("a bench-process chart without an in-process target")
	}
}

// Every chart's y axis has one unit.
func TestHTMLOneUnitPerAxis(t *testing.T) {
	h := renderHTML(t, goalSample())
	units := map[string]bool{UnitMBps: true, UnitMsLog: true, UnitMB: true, UnitCores: true, UnitMsPerS: true, UnitRecPerS: true}
	labels := regexp.MustCompile(`<text class="ylabel"[^>]*>([^<]*)</text>`).FindAllStringSubmatch(h, -1)
	if len(labels) < 20 {
		t.Fatalf("%d y axis labels", len(labels))
	}
	for _, m := range labels {
		if u := html.UnescapeString(m[1]); !units[u] || strings.ContainsAny(u, "·,+&") {
			t.Errorf("y axis %q is not one of the units", u)
		}
	}
	if n := strings.Count(h, "<svg"); n != len(labels)+3 { // + the 3 bar charts of the ratios
		t.Errorf("%d charts, %d y labels", n, len(labels))
	}
}

// With a previous report, its figures stand beside this run's: in the
// verdict table and run by run.
func TestHTMLPreviousRun(t *testing.T) {
	h := renderHTML(t, goalSample())
	if strings.Contains(h, "previous") {
		t.Error("previous figures without a previous report")
	}
	r, prev := goalSample(), goalSample()
	prev.Started = r.Started.Add(-24 * time.Hour)
	prev.Runs[0].Summary.RawMBps = 70 // steady relay-e2e: 0.70×
	prev.Runs[0].Summary.CPUSecPerGB = 8.0
	prev.Runs = prev.Runs[:len(prev.Runs)-1] // no outage run
	r.Previous, r.PreviousFile = prev, "bench-20231113-221320.json"
	h = renderHTML(t, r)
	for _, want := range []string{
		"Previous run: 2023-11-13",
		"bench-20231113-221320.json",
		`<td class="l">2.00× (20.0 ms against 10.0 ms)</td><td class="l v">not met</td><td class="l prev">2.00× (20.0 ms against 10.0 ms), not met</td>`,
		`<td class="l">0.95× (95.0 of 100.0 MB/s)</td><td class="l v">met</td><td class="l prev">0.70× (70.0 of 100.0 MB/s), not met</td>`,
		`<td class="l">3.5 s/GB</td><td class="l v">met</td><td class="l prev">8.0 s/GB, not met</td>`,
		`<td class="l">0 missing of 1000</td><td class="l v">met</td><td class="l prev">-</td>`, // outage: not run before
		`<h2>This run beside the previous</h2>`,
		`<td class="l">steady</td><td class="l">relay-e2e</td><td>95.0</td><td class="prev">70.0</td>`,
		`<td class="l">outage</td><td class="l">relay-e2e</td><td>5.0</td><td class="prev">-</td>`,
	} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %s", want)
		}
	}
	var b bytes.Buffer
	WriteTable(&b, r)
	if !strings.Contains(b.String(), "(previous: 0.70× (70.0 of 100.0 MB/s), not met)") {
		t.Errorf("terminal verdicts lack the previous figure:\n%s", b.String())
	}
}

// FindPrevious takes the newest report slsbench wrote in the directory.
func TestFindPrevious(t *testing.T) {
	dir := t.TempDir()
	if r, path, err := FindPrevious(dir); r != nil || path != "" || err != nil {
		t.Fatalf("empty directory: %v %q %v", r, path, err)
	}
	for _, stamp := range []string{"20260101-120000", "20260102-080000", "20251231-235959"} {
		r := goalSample()
		r.Host.CPUModel = stamp
		if err := WriteJSON(filepath.Join(dir, "bench-"+stamp+".json"), r); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "latest.json"), []byte("{}"), 0o644)
	r, path, err := FindPrevious(dir)
	if err != nil || filepath.Base(path) != "bench-20260102-080000.json" || r.Host.CPUModel != "20260102-080000" {
		t.Fatalf("got %q (%v), err %v", path, r, err)
	}
	if len(r.Runs) != len(goalSample().Runs) || r.Runs[10].Outages[0] != (Window{From: 5, To: 9}) {
		t.Errorf("runs or outages lost in the round trip: %+v", r.Runs[10])
	}
	os.WriteFile(filepath.Join(dir, "bench-20260103-000000.json"), []byte("{"), 0o644)
	if _, _, err := FindPrevious(dir); err == nil || !strings.Contains(err.Error(), "bench-20260103-000000.json") {
		t.Errorf("a broken report: %v", err)
	}
}

// A recorded run (slsbench -scenario outage -outage 4s -duration 14s, the
// relay in a child process) renders with its outage shaded and the
// relay's own memory and CPU drawn to their own scale.
func TestRecordedOutageRun(t *testing.T) {
	r, err := ReadJSON(filepath.Join("testdata", "outage-run.json"))
	if err != nil {
		t.Fatal(err)
	}
	cs := charts(renderHTML(t, r))
	for _, key := range []string{"outage/throughput acknowledged (plain-file: see ratios)", "outage/relay-e2e WAL backlog", "outage/relay process CPU"} {
		if !strings.Contains(cs[key], `<rect class="outage"`) {
			t.Errorf("%s: no outage band", key)
		}
	}
	points := regexp.MustCompile(`points="([^"]*)"`)
	for _, key := range []string{"outage/relay process memory (RSS)", "outage/relay process CPU"} {
		m := points.FindStringSubmatch(cs[key])
		if m == nil {
			t.Errorf("%s: no line", key)
			continue
		}
		ys := map[string]bool{}
		for _, p := range strings.Fields(m[1]) {
			ys[p[strings.IndexByte(p, ',')+1:]] = true
		}
		if len(ys) < 5 {
			t.Errorf("%s: the line is flat (%d heights)", key, len(ys))
		}
	}
}

// Each run's CPU per GB is shown for each process apart: the target's,
// relay-e2e's stand-in's and the load generator's, in the table and the
// HTML, with the in-process targets marked; relay-e2e's per-second CPU is
// charted by process.
func TestCPUPerProcess(t *testing.T) {
	r := sample()
	for _, run := range r.Runs {
		s := &run.Summary
		switch run.Target {
		case "relay-e2e":
			s.CPUSecPerGB, s.StandInCPUSecPerGB, s.BenchCPUSecPerGB = 7.25, 3.5, 2.25
			for i := range run.Series {
				run.Series[i].CPU, run.Series[i].StandInCPU, run.Series[i].BenchCPU = 0.9, 0.4, 0.3
			}
		case "relay-ack":
			s.CPUSecPerGB, s.BenchCPUSecPerGB = 4.5, 2.5
			s.ReqP99, s.ReqP999 = 3.25, 9.5
		case "ack-only":
			s.CPUSecPerGB, s.BenchCPUSecPerGB, s.CPUShared = 5.5, 5.5, true
		}
	}
	var b bytes.Buffer
	WriteTable(&b, r)
	rows, reqs := map[string]string{}, map[string]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Split(line, "|"); len(f) > 13 {
			cols := make([]string, len(f))
			for i := range f {
				cols[i] = strings.TrimSpace(f[i])
			}
			rows[cols[1]] = strings.Join(cols[11:14], " ")
			reqs[cols[1]] = cols[9]
		}
	}
	f := func(target, want string) {
		t.Helper()
		if rows[target] != want {
			t.Errorf("%s: CPU s/GB target, stand-in, load gen = %q, want %q\n%s", target, rows[target], want, b.String())
		}
	}
	f("target", "CPU s/GB target stand-in load gen")
	f("relay-e2e", "7.2 3.5 2.2")
	f("relay-ack", "4.5 - 2.5")
	f("ack-only", "5.5* - 5.5")
	if reqs["relay-ack"] != "3.25 / 9.50" || reqs["ack-only"] != "-" {
		t.Errorf("req p99 / p99.9 column: relay-ack %q, ack-only %q, want \"3.25 / 9.50\" and \"-\"\n%s", reqs["relay-ack"], reqs["ack-only"], b.String())
	}
	if !strings.Contains(b.String(), "stand-in = relay-e2e's SLS stand-in, a child process of its own") {
		t.Errorf("table does not say what the CPU columns are:\n%s", b.String())
	}
	b.Reset()
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, want := range []string{"<th>CPU s/GB target</th><th>stand-in</th><th>load gen</th>",
		"<td>7.2</td><td>3.5</td><td>2.2</td>", "<td>5.5*</td><td>-</td><td>5.5</td>",
		"relay-e2e CPU by process", "SLS stand-in", "load generator (bench)"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}
