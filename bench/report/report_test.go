package report

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
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
