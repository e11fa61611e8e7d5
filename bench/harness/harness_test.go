package harness

import (
	"context"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/load"
	"github.com/slsrelay/slsrelay/bench/report"
	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/bench/targets"
)

// tiny is a scenario small enough for a unit test: 2 connections,
// 3000 rec/s, Beats-like batching.
func tiny() Scenario {
	return Scenario{Name: "tiny", Profile: load.Profiles["beats"], Conns: 2, Acks: 1, Pace: load.Pace{Rate: 3000}}
}

func runE2E(t *testing.T, drop func(*slsfake.Server)) *report.Run {
	t.Helper()
	run := RunTarget(context.Background(), Options{
		Scenario: tiny(), Duration: 2 * time.Second, WorkDir: t.TempDir(),
		DrainTimeout: 30 * time.Second, BeforeLossCheck: drop,
	}, RelayE2E)
	if run.Error != "" {
		t.Fatalf("run error: %s", run.Error)
	}
	if run.Loss == nil {
		t.Fatal("no loss check for relay-e2e")
	}
	if run.Summary.Acked < 1000 || run.Loss.Acked != run.Summary.Acked {
		t.Fatalf("acked %d, loss check saw %d", run.Summary.Acked, run.Loss.Acked)
	}
	if !run.Loss.Drained {
		t.Fatal("backlog did not drain")
	}
	return run
}

// The loss check is real: every acked id is looked for in the stand-in, so
// a record dropped there is reported missing, and none is without a drop.
func TestLossCheck(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		run := runE2E(t, nil)
		l := run.Loss
		if l.Missing != 0 || l.Received < l.Acked {
			t.Fatalf("missing %d, received %d of %d acked", l.Missing, l.Received, l.Acked)
		}
		if run.Summary.E2EP99 <= 0 || run.Summary.AckP99 <= 0 {
			t.Fatalf("latencies not measured: %+v", run.Summary)
		}
		if len(run.Series) == 0 {
			t.Fatal("no time series")
		}
		var cpu float64
		for _, p := range run.Series {
			cpu += p.CPU
		}
		if cpu <= 0 {
			t.Fatal("no CPU sampled per second")
		}
	})
	t.Run("DropNewest", func(t *testing.T) {
		var dropped int
		run := runE2E(t, func(s *slsfake.Server) { dropped = s.DropNewest(targets.Project, targets.Topic, 1) })
		if dropped != 1 {
			t.Fatalf("stand-in dropped %d", dropped)
		}
		if run.Loss.Missing != 1 || run.Loss.OK() {
			t.Fatalf("dropped 1 record, bench reports %d missing", run.Loss.Missing)
		}
		if report.LossText(run)[:7] != "MISSING" {
			t.Fatalf("loss text %q", report.LossText(run))
		}
	})
	t.Run("DropLogs", func(t *testing.T) {
		const victim = 500
		run := runE2E(t, func(s *slsfake.Server) {
			s.DropLogs(targets.Project, targets.Topic, func(l slsfake.StoredLog) bool {
				for _, kv := range l.Contents {
					if id, _, ok := load.ParseValue([]byte(kv.Value)); ok && id == victim {
						return true
					}
				}
				return false
			})
		})
		if run.Loss.Missing != 1 || len(run.Loss.FirstMiss) != 1 || run.Loss.FirstMiss[0] != victim {
			t.Fatalf("dropped id %d, bench reports %d missing: %v", victim, run.Loss.Missing, run.Loss.FirstMiss)
		}
	})
}

// The reference targets answer the same client load, old clients and
// SASL_SSL included.
func TestReferenceTargets(t *testing.T) {
	for _, c := range []struct {
		name   string
		mod    func(*Scenario)
		target string
	}{
		{"ack-only", func(*Scenario) {}, AckOnly},
		{"ack-only/old-clients", func(s *Scenario) { s.OldClients = true }, AckOnly},
		{"ack-only/sasl-ssl", func(s *Scenario) { s.SASLSSL = true }, AckOnly},
		{"ack-only/raw", func(s *Scenario) { s.Raw, s.Conns = true, 50 }, AckOnly},
		{"ack-only/raw/sasl-ssl", func(s *Scenario) { s.Raw, s.Conns, s.SASLSSL = true, 50, true }, AckOnly},
		{"relay-ack/raw/sasl-ssl", func(s *Scenario) { s.Raw, s.Conns, s.SASLSSL = true, 50, true }, RelayAck},
		{"relay-ack/sasl-ssl", func(s *Scenario) { s.SASLSSL = true }, RelayAck},
		{"relay-ack/old-clients", func(s *Scenario) { s.OldClients = true }, RelayAck},
		{"kfake", func(*Scenario) {}, Kfake},
		{"plain-file", func(*Scenario) {}, PlainFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := tiny()
			c.mod(&sc)
			run := RunTarget(context.Background(), Options{Scenario: sc, Duration: time.Second, WorkDir: t.TempDir()}, c.target)
			if run.Error != "" || run.Summary.Acked == 0 || run.Summary.Failed != 0 {
				t.Fatalf("error %q, acked %d, failed %d, notes %v", run.Error, run.Summary.Acked, run.Summary.Failed, run.Notes)
			}
		})
	}
}

// An outage run records its window (a third of the run in, as long as
// the outage) for the report to shade, and loses nothing.
func TestOutageWindowRecorded(t *testing.T) {
	sc := tiny()
	sc.Outage = time.Second
	run := RunTarget(context.Background(), Options{Scenario: sc, Duration: 3 * time.Second, WorkDir: t.TempDir(), DrainTimeout: 30 * time.Second}, RelayE2E)
	if run.Error != "" || run.Loss == nil || !run.Loss.OK() {
		t.Fatalf("error %q, loss %+v", run.Error, run.Loss)
	}
	if len(run.Outages) != 1 || run.Outages[0] != (report.Window{From: 1, To: 2}) {
		t.Fatalf("outages %+v, want one from 1 s to 2 s", run.Outages)
	}
}
