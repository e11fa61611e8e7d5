package configs_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// prometheusOwn are series Prometheus itself writes for every target, with
// the labels they carry; the relay does not register them.
var prometheusOwn = map[string]bool{"up": true}

// targetLabels are attached by Prometheus to every scraped series.
var targetLabels = map[string]bool{"job": true, "instance": true}

// histogramSuffixes are the series a Prometheus histogram is exposed as.
var histogramSuffixes = []string{"_bucket", "_sum", "_count"}

// lookup finds the metric a series name belongs to; le is a label only of
// the _bucket series.
func lookup(defs map[string]*metricDef, series string) (def *metricDef, bucket bool) {
	if d := defs[series]; d != nil {
		return d, false
	}
	for _, suf := range histogramSuffixes {
		if base, ok := strings.CutSuffix(series, suf); ok {
			if d := defs[base]; d != nil && d.histogram {
				return d, suf == "_bucket"
			}
		}
	}
	return nil, false
}

// checkExpr reports every series name, matcher and grouping label of expr
// that the relay does not export, and returns the labels its series carry.
func checkExpr(defs map[string]*metricDef, expr string) (labels map[string]bool, problems []string) {
	refs, err := scanPromQL(expr)
	if err != nil {
		return nil, []string{err.Error()}
	}
	labels = map[string]bool{}
	for l := range targetLabels {
		labels[l] = true
	}
	relay := 0
	for _, sel := range refs.selectors {
		if sel.name == "" {
			problems = append(problems, "a selector without a metric name")
			continue
		}
		if prometheusOwn[sel.name] {
			for _, m := range sel.matchers {
				if !targetLabels[m.label] {
					problems = append(problems, fmt.Sprintf("%s has no label %q", sel.name, m.label))
				}
			}
			continue
		}
		d, bucket := lookup(defs, sel.name)
		if d == nil {
			problems = append(problems, fmt.Sprintf("%s is not a metric the relay registers", sel.name))
			continue
		}
		relay++
		for l := range d.labels {
			labels[l] = true
		}
		if bucket {
			labels["le"] = true
		}
		for _, m := range sel.matchers {
			values, known := d.labels[m.label]
			switch {
			case m.label == "le" && bucket, targetLabels[m.label]:
			case !known:
				problems = append(problems, fmt.Sprintf("%s has no label %q", sel.name, m.label))
			case values != nil && (m.op == "=" || m.op == "=~"):
				for _, v := range strings.Split(m.value, "|") {
					if !values[v] {
						problems = append(problems, fmt.Sprintf("%s{%s} never has the value %q (the code sets %v)", sel.name, m.label, v, keys(values)))
					}
				}
			}
		}
	}
	if relay == 0 && len(refs.selectors) == 0 {
		problems = append(problems, "reads no metric")
	}
	for _, g := range refs.grouping {
		if !labels[g] {
			problems = append(problems, fmt.Sprintf("groups by %q, which none of its series carries", g))
		}
	}
	return labels, problems
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var labelRef = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)

// TestAlertRulesUseRelayMetrics: every series an alert reads is one the
// relay registers (or Prometheus's own `up`), with labels and fixed label
// values the code sets, and every $labels.x an annotation prints exists.
func TestAlertRulesUseRelayMetrics(t *testing.T) {
	defs := registeredMetrics(t)
	var rf ruleFile
	if err := yaml.Unmarshal([]byte(readFile(t, "prometheus/alerts.yaml")), &rf); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			name := r.Alert + r.Record
			labels, problems := checkExpr(defs, r.Expr)
			for _, p := range problems {
				t.Errorf("alert %s: %s", name, p)
			}
			for _, text := range r.Annotations {
				for _, m := range labelRef.FindAllStringSubmatch(text, -1) {
					if labels != nil && !labels[m[1]] {
						t.Errorf("alert %s: annotation uses $labels.%s, which its series do not carry", name, m[1])
					}
				}
			}
			if r.Labels["severity"] == "" && r.Alert != "" {
				t.Errorf("alert %s has no severity label", name)
			}
		}
	}
	if n < 6 {
		t.Fatalf("read %d rules from alerts.yaml, want the six areas covered", n)
	}
}

// TestAlertTestSeriesAreRelayMetrics: the series promtool's rule tests feed
// are shaped like the relay's, so a passing rule test says something.
func TestAlertTestSeriesAreRelayMetrics(t *testing.T) {
	defs := registeredMetrics(t)
	var tf struct {
		Tests []struct {
			InputSeries []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "prometheus/alerts_test.yaml")), &tf); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tf.Tests {
		for _, in := range tc.InputSeries {
			if _, problems := checkExpr(defs, in.Series); len(problems) > 0 {
				t.Errorf("input series %s: %s", in.Series, strings.Join(problems, "; "))
			}
		}
	}
}

// dashboardQueries returns every PromQL expression of a Grafana dashboard
// (panel targets, also inside collapsed rows) and the metric/label pairs of
// its label_values() variables.
func dashboardQueries(t *testing.T, path string) (exprs []string, labelValues [][2]string, panels []map[string]any) {
	t.Helper()
	var dash map[string]any
	if err := json.Unmarshal([]byte(readFile(t, path)), &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var walk func(ps []any)
	walk = func(ps []any) {
		for _, p := range ps {
			pm, _ := p.(map[string]any)
			panels = append(panels, pm)
			targets, _ := pm["targets"].([]any)
			for _, tg := range targets {
				if e, _ := tg.(map[string]any)["expr"].(string); e != "" {
					exprs = append(exprs, e)
				}
			}
			inner, _ := pm["panels"].([]any)
			walk(inner)
		}
	}
	ps, _ := dash["panels"].([]any)
	walk(ps)
	lv := regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)`)
	tmpl, _ := dash["templating"].(map[string]any)
	vars, _ := tmpl["list"].([]any)
	for _, v := range vars {
		b, _ := json.Marshal(v)
		for _, m := range lv.FindAllStringSubmatch(string(b), -1) {
			labelValues = append(labelValues, [2]string{m[1], m[2]})
		}
	}
	return exprs, labelValues, panels
}

// TestDashboardUsesRelayMetrics: the same check for every query of the
// Grafana dashboard, and the panels are well formed (unique ids, one
// data source variable, a query in every graph).
func TestDashboardUsesRelayMetrics(t *testing.T) {
	defs := registeredMetrics(t)
	exprs, labelValues, panels := dashboardQueries(t, "grafana/slsrelay.json")
	if len(exprs) < 10 {
		t.Fatalf("found %d queries in the dashboard", len(exprs))
	}
	for _, e := range exprs {
		if _, problems := checkExpr(defs, e); len(problems) > 0 {
			t.Errorf("query %s: %s", e, strings.Join(problems, "; "))
		}
	}
	for _, lv := range labelValues {
		labels, problems := checkExpr(defs, lv[0])
		if len(problems) > 0 {
			t.Errorf("variable label_values(%s, %s): %s", lv[0], lv[1], strings.Join(problems, "; "))
		} else if !labels[lv[1]] {
			t.Errorf("variable label_values(%s, %s): no such label", lv[0], lv[1])
		}
	}
	ids := map[float64]bool{}
	for _, p := range panels {
		id, _ := p["id"].(float64)
		if ids[id] {
			t.Errorf("panel id %v used twice", id)
		}
		ids[id] = true
		if p["type"] == "row" {
			continue
		}
		if targets, _ := p["targets"].([]any); len(targets) == 0 {
			t.Errorf("panel %q has no query", p["title"])
		}
		if ds, _ := p["datasource"].(map[string]any); ds["uid"] != "${datasource}" {
			t.Errorf("panel %q: datasource %v, want the ${datasource} variable", p["title"], p["datasource"])
		}
	}
}

// TestNameCheckCatchesDrift: the check fails on what it must catch.
func TestNameCheckCatchesDrift(t *testing.T) {
	defs := registeredMetrics(t)
	f := func(expr string, wantProblem bool) {
		t.Helper()
		_, problems := checkExpr(defs, expr)
		if (len(problems) > 0) != wantProblem {
			t.Errorf("checkExpr(%s) = %v, want problems: %v", expr, problems, wantProblem)
		}
	}
	f(`rate(slsrelay_sls_requests_total{result="ok"}[5m])`, false)
	f(`rate(slsrelay_sls_request_total[5m])`, true)                   // misspelt
	f(`rate(slsrelay_sls_requests_total{result="failed"}[5m])`, true) // no such value
	f(`sum by (code) (rate(slsrelay_sls_requests_total[5m]))`, true)  // no such label
	f(`histogram_quantile(0.99, sum by (le) (rate(slsrelay_produce_duration_seconds_bucket[5m])))`, false)
	f(`slsrelay_wal_pending_bytes_bucket`, true) // not a histogram
	f(`process_resident_memory_bytes`, true)     // the library's, not the relay's
	f(`up{job="slsrelay"} == 0`, false)
	f(`sum by (instance, error) (rate(slsrelay_produce_errors_total{error="KAFKA_STORAGE_ERROR"}[5m]))`, false)
}
