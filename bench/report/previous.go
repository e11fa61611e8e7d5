package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// ReadJSON reads a report WriteJSON wrote.
func ReadJSON(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read report %q: %w", path, err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("cannot parse report %q: %w", path, err)
	}
	return &r, nil
}

// FindPrevious returns the newest report in dir (bench-<stamp>.json, the
// names slsbench writes; the stamp sorts by time) and its path; nil and
// "" when dir holds none. Call it before writing this run's report.
func FindPrevious(dir string) (*Report, string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "bench-*.json"))
	if err != nil || len(names) == 0 {
		return nil, "", err
	}
	sort.Strings(names)
	path := names[len(names)-1]
	r, err := ReadJSON(path)
	if err != nil {
		return nil, "", err
	}
	return r, path, nil
}

// previousRun finds the run of the same scenario and target.
func previousRun(prev *Report, run *Run) *Run {
	if prev == nil {
		return nil
	}
	for _, p := range prev.Runs {
		if p.Scenario == run.Scenario && p.Target == run.Target {
			return p
		}
	}
	return nil
}
