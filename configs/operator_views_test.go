package configs_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOperatorViews: the dashboard has a panel, and the alert rules a
// rule, for each question an operator asks first: is the relay ready, how
// much disk is left, who is refused and why, who is connected and who
// sends most.
func TestOperatorViews(t *testing.T) {
	exprs, _, panels := dashboardQueries(t, "grafana/slsrelay.json")
	var rf ruleFile
	if err := yaml.Unmarshal([]byte(readFile(t, "prometheus/alerts.yaml")), &rf); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Expr)
		}
	}
	has := func(list []string, parts ...string) bool {
		for _, e := range list {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(e, p)
			}
			if all {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		what  string
		parts []string
	}{
		{"readiness", []string{"slsrelay_ready"}},
		{"free disk share", []string{"slsrelay_wal_filesystem_free_ratio"}},
		{"free disk bytes", []string{"slsrelay_wal_filesystem_free_bytes"}},
		{"refusals by reason", []string{"slsrelay_refusals_total", "by (reason"}},
		{"connected shippers", []string{"slsrelay_shipper_connections"}},
		{"top shippers", []string{"topk(", "slsrelay_shipper_bytes_per_second", "by (shipper)"}},
	} {
		if !has(exprs, c.parts...) {
			t.Errorf("the dashboard has no panel for %s (a query with %q)", c.what, c.parts)
		}
	}
	for _, c := range []struct {
		what  string
		parts []string
	}{
		{"not ready", []string{"slsrelay_ready", "== 0"}},
		{"free share low", []string{"slsrelay_wal_filesystem_free_ratio", "<"}},
		{"free bytes low", []string{"slsrelay_wal_filesystem_free_bytes", "<"}},
		{"refusals", []string{"slsrelay_refusals_total"}},
	} {
		if !has(alerts, c.parts...) {
			t.Errorf("no alert rule for %s (an expression with %q)", c.what, c.parts)
		}
	}
	if len(panels) == 0 || panels[0]["title"] != "Health and shippers" {
		t.Errorf("the dashboard does not open with its health row: %v", panels[0]["title"])
	}
}
