package report

import (
	"bytes"
	"strings"
	"testing"
)

func TestMeasureStages(t *testing.T) {
	stages, err := MeasureStages()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]float64{}
	for _, s := range stages {
		names[s.Name] = s.CPUMsMB
		if s.CPUMsMB <= 0 {
			t.Errorf("stage %s: %v CPU ms per MB", s.Name, s.CPUMsMB)
		}
	}
	for _, want := range []string{"WAL read (one copy)", "gunzip", "Kafka record decoding", "record → Log (incl. decoding)", "lz4 of the LogGroup", "MD5 of the lz4 body"} {
		if _, ok := names[want]; !ok {
			t.Errorf("no stage %q in %v", want, names)
		}
	}

	var b bytes.Buffer
	r := sample()
	r.Stages = stages
	WriteTable(&b, r)
	out := b.String()
	for _, want := range []string{"floor of each stage", "gunzip", "sum, uncompressed input", "sum, gzip input"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	WriteTable(&b, sample())
	if strings.Contains(b.String(), "floor of each stage") {
		t.Error("a report without stages shows the stage section")
	}
}

func TestWriteStagesSums(t *testing.T) {
	var b bytes.Buffer
	WriteStages(&b, []Stage{{Name: "WAL read (one copy)", CPUMsMB: 0.25}, {Name: "gunzip", CPUMsMB: 3},
		{Name: "Kafka record decoding", CPUMsMB: 0.5, Within: true}, {Name: "lz4 of the LogGroup", CPUMsMB: 2.5}})
	out := b.String()
	for _, want := range []string{"sum, uncompressed input  2.75", "sum, gzip input          5.75"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestHTMLStageFloors: the HTML has the floors, their sums, and each relay
// run's CPU s/GB against the sum for its input, right after the runs'
// table; a run whose CPU includes the load generator is left out, and a
// report without stages has no such section.
func TestHTMLStageFloors(t *testing.T) {
	r := sample()
	r.Stages = []Stage{{Name: "WAL read (one copy)", CPUMsMB: 0.25}, {Name: "gunzip", CPUMsMB: 3, Note: "gzip input only"},
		{Name: "Kafka record decoding", CPUMsMB: 0.5, Within: true}, {Name: "lz4 of the LogGroup", CPUMsMB: 2.5}}
	set := func(target, compression string, cpu float64, shared bool) {
		for _, run := range r.Runs {
			if run.Scenario == "steady" && run.Target == target {
				run.Settings["compression"] = compression
				run.Summary.CPUSecPerGB, run.Summary.CPUShared = cpu, shared
			}
		}
	}
	set("relay-e2e", "gzip", 23, false)
	set("relay-ack", "none", 5.5, false)
	set("kfake", "lz4", 4, false)
	set("ack-only", "gzip", 99, true)
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, want := range []string{
		`<h2>Stage floors</h2>`,
		`<tr><td class="l">gunzip</td><td>3.00</td><td class="l">gzip input only</td></tr>`,
		`<th class="l">sum, uncompressed input</th><th>2.75</th>`,
		`<th class="l">sum, gzip input</th><th>5.75</th>`,
		`<td class="l">relay-e2e</td><td class="l">gzip</td><td>23.0</td><td>5.75</td><td>4.0×</td>`,
		`<td class="l">relay-ack</td><td class="l">none</td><td>5.5</td><td>2.75</td><td>2.0×</td>`,
		`<td class="l">kfake</td><td class="l">lz4</td><td>4.0</td><td>-</td><td>-</td>`,
	} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(h, `<td>99.0</td><td>5.75</td>`) {
		t.Error("a run whose CPU includes the load generator is set against the floor")
	}
	if runs, floors := strings.Index(h, "<h2>Runs</h2>"), strings.Index(h, "<h2>Stage floors</h2>"); runs < 0 || floors < runs || strings.Contains(h[runs:floors], "<h2>Reference") {
		t.Errorf("the stage floors are not right after the runs' table (at %d, runs at %d)", floors, runs)
	}
	b.Reset()
	if err := WriteHTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "Stage floors") {
		t.Error("a report without stages shows the stage floors")
	}
}
