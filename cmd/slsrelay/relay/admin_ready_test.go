package relay

import (
	"strings"
	"testing"
)

// A relay that is not serving (here: never started, no listeners and no
// WAL) reports slsrelay_ready 0, as /readyz answers 503, and no file
// system figures, having no WAL directory open.
func TestReadyMetricNotReady(t *testing.T) {
	r := &Relay{}
	if r.ready() == nil {
		t.Fatal("an unstarted relay is ready")
	}
	var b strings.Builder
	r.writeMetrics(&b)
	if got := b.String(); got != "slsrelay_ready 0\n" {
		t.Errorf("metrics of an unstarted relay: %q", got)
	}
}
