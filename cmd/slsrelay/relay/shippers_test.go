package relay

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/slsrelay/slsrelay/engine"
)

// /metrics names the top N shippers by bytes/s, each the sum of its
// connections, and sums the rest under (others): a bounded set of series
// however many hosts ship.
func TestShipperMetricsAreBounded(t *testing.T) {
	var list []engine.Shipper
	for i := 0; i < 50; i++ {
		// Two connections per host, host i sending i+1 bytes/s on each.
		for port := 1; port <= 2; port++ {
			list = append(list, engine.Shipper{Address: fmt.Sprintf("10.0.0.%d:%d", i, port), ClientID: "beat\n\"x\"", BytesPerSec: float64(i + 1), RecordsPerSec: 1})
		}
	}
	var out bytes.Buffer
	writeShipperMetrics(&out, list)
	text := out.String()
	f := func(series string, want float64) {
		t.Helper()
		line := series + " " + fmt.Sprint(want) + "\n"
		if !strings.Contains(text, line) {
			t.Fatalf("no line %q in:\n%s", line, text)
		}
	}
	f(`slsrelay_shipper_connections`, 100)
	f(`slsrelay_shipper_bytes_per_second{shipper="beat__x_@10.0.0.49"}`, 100)
	f(`slsrelay_shipper_bytes_per_second{shipper="beat__x_@10.0.0.40"}`, 82)
	f(`slsrelay_shipper_records_per_second{shipper="beat__x_@10.0.0.40"}`, 2)
	// Hosts 0 to 39: 2*(1+…+40) bytes/s.
	f(`slsrelay_shipper_bytes_per_second{shipper="(others)"}`, 1640)
	if n := strings.Count(text, "slsrelay_shipper_bytes_per_second{"); n != ShippersTopN+1 {
		t.Fatalf("%d bytes/s series, want %d", n, ShippersTopN+1)
	}
}
