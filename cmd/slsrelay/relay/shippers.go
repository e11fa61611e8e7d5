package relay

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/slsrelay/slsrelay/engine"
)

// ShippersTopN is how many shippers /metrics names; the rest are summed
// under shipper="(others)", so a fleet of thousands of hosts adds a
// bounded number of series.
const ShippersTopN = 10

// othersShipper labels the aggregate of the shippers past the top N.
const othersShipper = "(others)"

// serveShippers answers /shippers: the connected shippers as JSON, busiest
// first (what `slsrelay clients` prints).
func (r *Relay) serveShippers(w http.ResponseWriter, _ *http.Request) {
	list := []engine.Shipper{}
	if r.server != nil {
		list = append(list, r.server.Shippers()...)
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(list)
}

// ShipperName is how a shipper is named in /metrics and on the status
// page: its client.id at its host (connections of one shipper share both).
func ShipperName(sh engine.Shipper) string {
	host := sh.Address
	if h, _, err := net.SplitHostPort(sh.Address); err == nil {
		host = h
	}
	id := sh.ClientID
	if id == "" {
		id = "(no client.id)"
	}
	return labelSafe(id) + "@" + host
}

// labelSafe keeps printable ASCII of a client-given name, for a label.
func labelSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, s)
}

type shipperRate struct {
	name           string
	records, bytes float64
}

// topShippers sums the connections of each shipper and returns the n
// busiest (bytes/s, then name) and the sum of the rest (nil if none).
func topShippers(list []engine.Shipper, n int) (top []shipperRate, others *shipperRate) {
	byName := map[string]*shipperRate{}
	for _, sh := range list {
		name := ShipperName(sh)
		s := byName[name]
		if s == nil {
			s = &shipperRate{name: name}
			byName[name] = s
		}
		s.records += sh.RecordsPerSec
		s.bytes += sh.BytesPerSec
	}
	for _, s := range byName {
		top = append(top, *s)
	}
	sort.Slice(top, func(i, j int) bool {
		if top[i].bytes != top[j].bytes {
			return top[i].bytes > top[j].bytes
		}
		return top[i].name < top[j].name
	})
	if len(top) > n {
		others = &shipperRate{name: othersShipper}
		for _, s := range top[n:] {
			others.records += s.records
			others.bytes += s.bytes
		}
		top = top[:n]
	}
	return top, others
}

// writeShipperMetrics writes the per-shipper gauges: the top N shippers by
// bytes/s by name, the rest summed.
func writeShipperMetrics(w io.Writer, list []engine.Shipper) {
	metrics.WriteGaugeUint64(w, "slsrelay_shipper_connections", uint64(len(list)))
	top, others := topShippers(list, ShippersTopN)
	if others != nil {
		top = append(top, *others)
	}
	for _, s := range top {
		metrics.WriteGaugeFloat64(w, fmt.Sprintf(`slsrelay_shipper_bytes_per_second{shipper=%q}`, s.name), s.bytes)
		metrics.WriteGaugeFloat64(w, fmt.Sprintf(`slsrelay_shipper_records_per_second{shipper=%q}`, s.name), s.records)
	}
}
