package configs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// metricDef is one metric the relay registers, as read from its source.
type metricDef struct {
	histogram bool
	// labels maps each label name to its fixed values; a nil set means
	// the value is computed at run time (any value).
	labels map[string]map[string]bool
	where  string // file:line of the first registration
}

// metricsPackage is the import path whose calls register and write the
// relay's metrics (the admin listener serves its set on /metrics).
const metricsPackage = "github.com/VictoriaMetrics/metrics"

// sourceDirs hold the relay's code; tests are left out.
var sourceDirs = []string{"../engine", "../wal", "../shardwriter", "../cmd"}

// registeredMetrics reads the relay's Go sources (nothing runs) and
// returns every metric name passed to the metrics package: the first
// argument of GetOrCreate*/New*, the second of Write* (the scrape-time
// gauges). A name built with fmt.Sprintf or from a variable assigned in the
// same file is followed; "{label=%q}" marks a label with run-time values,
// `{result="ok"}` one with a fixed value.
func registeredMetrics(t *testing.T) map[string]*metricDef {
	t.Helper()
	defs := map[string]*metricDef{}
	fset := token.NewFileSet()
	for _, dir := range sourceDirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			collectMetrics(t, fset, f, defs)
			return nil
		})
		if err != nil {
			t.Fatalf("cannot read %s: %v", dir, err)
		}
	}
	if len(defs) < 10 {
		t.Fatalf("found only %d metrics in %v: the source parser no longer matches the code", len(defs), sourceDirs)
	}
	return defs
}

func collectMetrics(t *testing.T, fset *token.FileSet, f *ast.File, defs map[string]*metricDef) {
	pkgName := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == metricsPackage {
			pkgName = "metrics"
			if imp.Name != nil {
				pkgName = imp.Name.Name
			}
		}
	}
	if pkgName == "" {
		return
	}
	vars := stringVars(f)
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != pkgName {
			return true
		}
		fn := sel.Sel.Name
		arg := -1
		switch {
		case strings.HasPrefix(fn, "GetOrCreate"), strings.HasPrefix(fn, "New"):
			arg = 0
		case strings.HasPrefix(fn, "WriteGauge"), strings.HasPrefix(fn, "WriteCounter"):
			arg = 1
		}
		if arg < 0 || arg >= len(call.Args) {
			return true
		}
		s, ok := resolveString(call.Args[arg], vars)
		if !ok {
			t.Errorf("%s: cannot read the metric name passed to %s.%s; teach registry_test.go this form",
				fset.Position(call.Pos()), pkgName, fn)
			return true
		}
		addMetric(defs, s, strings.Contains(fn, "Histogram"), fset.Position(call.Pos()).String())
		return true
	})
}

// stringVars maps variables assigned once in a file (x := expr, var x =
// expr) to their expressions, so a name built as "name" + labels resolves.
func stringVars(f *ast.File) map[string]ast.Expr {
	vars := map[string]ast.Expr{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) == 1 && len(n.Rhs) == 1 {
				if id, ok := n.Lhs[0].(*ast.Ident); ok {
					vars[id.Name] = n.Rhs[0]
				}
			}
		case *ast.ValueSpec:
			if len(n.Names) == 1 && len(n.Values) == 1 {
				vars[n.Names[0].Name] = n.Values[0]
			}
		}
		return true
	})
	return vars
}

func resolveString(e ast.Expr, vars map[string]ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok1 := resolveString(e.X, vars)
		b, ok2 := resolveString(e.Y, vars)
		return a + b, ok1 && ok2
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Sprintf" && len(e.Args) > 0 {
			return resolveString(e.Args[0], vars)
		}
	case *ast.Ident:
		if v, ok := vars[e.Name]; ok {
			delete(vars, e.Name) // no cycles
			defer func() { vars[e.Name] = v }()
			return resolveString(v, vars)
		}
	case *ast.ParenExpr:
		return resolveString(e.X, vars)
	}
	return "", false
}

// addMetric records `name{label="value",other=%q}`.
func addMetric(defs map[string]*metricDef, s string, histogram bool, where string) {
	name, rest, _ := strings.Cut(s, "{")
	d := defs[name]
	if d == nil {
		d = &metricDef{labels: map[string]map[string]bool{}, where: where}
		defs[name] = d
	}
	d.histogram = d.histogram || histogram
	rest = strings.TrimSuffix(rest, "}")
	for _, pair := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			continue
		}
		if strings.Contains(v, "%") { // a run-time value
			d.labels[k] = nil
			continue
		}
		if _, seen := d.labels[k]; seen && d.labels[k] == nil {
			continue
		}
		if d.labels[k] == nil {
			d.labels[k] = map[string]bool{}
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		d.labels[k][v] = true
	}
}

// TestRegistryReadsTheCode pins the parser to a few facts of the code, so
// a parser that silently finds less fails here rather than letting the
// name checks pass on an empty registry.
func TestRegistryReadsTheCode(t *testing.T) {
	defs := registeredMetrics(t)
	f := func(name string, histogram bool, label string, fixed ...string) {
		t.Helper()
		d := defs[name]
		if d == nil {
			t.Fatalf("%s not found among %d metrics", name, len(defs))
		}
		if d.histogram != histogram {
			t.Errorf("%s: histogram = %v, want %v", name, d.histogram, histogram)
		}
		if label == "" {
			return
		}
		values, ok := d.labels[label]
		if !ok {
			t.Fatalf("%s: no label %q (has %v)", name, label, d.labels)
		}
		for _, v := range fixed {
			if !values[v] {
				t.Errorf("%s: label %s has no fixed value %q (has %v)", name, label, v, values)
			}
		}
		if len(fixed) == 0 && values != nil {
			t.Errorf("%s: label %s should be a run-time value, got fixed %v", name, label, values)
		}
	}
	f("slsrelay_produce_duration_seconds", true, "")
	f("slsrelay_sls_requests_total", false, "result", "ok", "retry", "dead_letter")
	f("slsrelay_connections", false, "listener")
	f("slsrelay_records_in_total", false, "logstore")   // labels from a variable
	f("slsrelay_wal_oldest_pending_seconds", false, "") // written at scrape time
}
