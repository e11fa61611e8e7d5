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
