package configs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestPromtoolChecksRules: promtool parses the rules, runs their unit
// tests (alerts_test.yaml: which alerts fire on an outage, a bad key, a
// dead relay, and that none fires on a healthy one) and checks the scrape
// configuration that loads them.
func TestPromtoolChecksRules(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	out := run(t, "prometheus", promtool, "check", "rules", "alerts.yaml")
	t.Log(strings.TrimSpace(out))
	out = run(t, "prometheus", promtool, "test", "rules", "alerts_test.yaml")
	t.Log(strings.TrimSpace(out))
	run(t, "prometheus", promtool, "check", "config", "prometheus.yml")
}

// TestPromtoolParsesDashboardQueries: the dashboard's queries, with
// Grafana's variables replaced by values, are valid PromQL (promtool
// checks them as recording rules).
func TestPromtoolParsesDashboardQueries(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	exprs, _, _ := dashboardQueries(t, "grafana/slsrelay.json")
	grafanaVars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$instance", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, e := range exprs {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: grafanaVars.Replace(e)})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, ".", promtool, "check", "rules", path)
	if !strings.Contains(out, fmt.Sprintf("%d rules found", len(exprs))) {
		t.Fatalf("promtool did not read all %d queries:\n%s", len(exprs), out)
	}
}
