// Package harness runs bench scenarios against the targets side by side,
// samples them every second, checks for loss end to end, and fills a
// report.Report.
package harness

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/slsrelay/slsrelay/bench/load"
)

// Target names.
const (
	RelayE2E  = "relay-e2e"  // engine → WAL → writers → SLS stand-in
	RelayAck  = "relay-ack"  // engine → MemoryAppender{Discard}: the ack path alone
	AckOnly   = "ack-only"   // bench/targets.AckOnly: the client load's ceiling
	AckFsync  = "ack-fsync"  // ack-only answering a Produce once fdatasync'd: the disk's share of an ack
	Kfake     = "kfake"      // franz-go's in-memory broker
	PlainFile = "plain-file" // fdatasync'd sequential file: the disk's limit
)

// AllTargets in report order.
var AllTargets = []string{RelayE2E, RelayAck, AckOnly, AckFsync, Kfake, PlainFile}

// Scenario is a named load shape and the targets it makes sense for.
type Scenario struct {
	Name        string
	Description string
	Profile     load.Profile
	Conns       int
	Raw         bool
	Acks        int
	Pace        load.Pace
	OldClients  bool
	SASLSSL     bool
	// Outage takes the SLS stand-in down for this long, starting at a third
	// of the run (relay-e2e only).
	Outage  time.Duration
	Targets []string
}

// Scenarios by name.
var Scenarios = map[string]Scenario{
	"steady": {Name: "steady", Description: "Beats-like fleet, 8 connections, gzip, up to 2048 events/batch, acks=1, as fast as acks allow",
		Profile: load.Profiles["beats"], Conns: 8, Acks: 1, Targets: AllTargets},
	"burst": {Name: "burst", Description: "Telegraf/librdkafka-like (lz4, 64 KiB batches, 5 ms linger), acks=-1, 10k rec/s with 2 s bursts at 5× every 10 s",
		Profile: load.Profiles["telegraf"], Conns: 8, Acks: -1,
		Pace: load.Pace{Rate: 10000, Factor: 5, On: 2 * time.Second, Off: 8 * time.Second}, Targets: AllTargets},
	"outage": {Name: "outage", Description: "Beats-like, 4 connections, 10k rec/s, acks=1; the SLS stand-in answers 503 for 60 s mid-run",
		Profile: load.Profiles["beats"], Conns: 4, Acks: 1, Pace: load.Pace{Rate: 10000},
		Outage: 60 * time.Second, Targets: []string{RelayE2E}},
	"many-connections": {Name: "many-connections", Description: "10,000 shippers, raw Produce v3, gzip, each flushing its share of 20k rec/s every second, acks=1",
		Profile: load.Profiles["beats"], Conns: 10000, Raw: true, Acks: 1, Pace: load.Pace{Rate: 20000},
		Targets: []string{RelayE2E, RelayAck, AckOnly, Kfake}},
	"many-connections-sasl-ssl": {Name: "many-connections-sasl-ssl", Description: "many-connections over SASL_SSL: 10,000 shippers, each with its own TLS session and SASL PLAIN login, raw Produce v3, gzip, 20k rec/s in all, acks=1",
		Profile: load.Profiles["beats"], Conns: 10000, Raw: true, Acks: 1, Pace: load.Pace{Rate: 20000}, SASLSSL: true,
		Targets: []string{RelayE2E, RelayAck, AckOnly}},
	"old-clients": {Name: "old-clients", Description: "franz-go pinned to Kafka 0.10.0: Produce v2 with MessageSet v1, gzip, 8 connections, acks=1, as fast as acks allow (kfake refuses Produce below v3, so it is left out)",
		Profile: load.Profiles["beats"], Conns: 8, Acks: 1, OldClients: true, Targets: []string{RelayE2E, RelayAck, AckOnly, AckFsync, PlainFile}},
	"sasl-ssl": {Name: "sasl-ssl", Description: "Beats-like over SASL_SSL (TLS + SASL PLAIN), 8 connections, gzip, acks=1, as fast as acks allow",
		Profile: load.Profiles["beats"], Conns: 8, Acks: 1, SASLSSL: true, Targets: AllTargets},
}

// Lookup returns a scenario by name.
func Lookup(name string) (Scenario, error) {
	s, ok := Scenarios[name]
	if !ok {
		var names []string
		for n := range Scenarios {
			names = append(names, n)
		}
		sort.Strings(names)
		return s, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(names, ", "))
	}
	return s, nil
}

// Settings describes a scenario for the report.
func (s Scenario) Settings(d time.Duration) map[string]string {
	m := map[string]string{
		"profile": s.Profile.Name, "compression": s.Profile.Compression,
		"batchMaxBytes": fmt.Sprint(s.Profile.BatchMaxBytes), "conns": fmt.Sprint(s.Conns),
		"acks": fmt.Sprint(s.Acks), "duration": d.String(), "records": "lognormal, median 500 B",
	}
	if s.Pace.Rate > 0 {
		m["rate"] = fmt.Sprintf("%.0f rec/s", s.Pace.Rate)
		if s.Pace.Factor > 1 {
			m["burst"] = fmt.Sprintf("%.0f× for %v every %v", s.Pace.Factor, s.Pace.On, s.Pace.On+s.Pace.Off)
		}
	} else {
		m["rate"] = "as fast as acks allow"
	}
	if s.Raw {
		m["client"] = "raw Produce v3"
	} else if s.OldClients {
		m["client"] = "franz-go, versions of Kafka 0.10.0"
	} else {
		m["client"] = "franz-go"
	}
	if s.SASLSSL {
		m["transport"] = "SASL_SSL"
	} else {
		m["transport"] = "PLAINTEXT"
	}
	if s.Outage > 0 {
		m["outage"] = s.Outage.String()
	}
	return m
}
