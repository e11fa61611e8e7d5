package harness

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/load"
	"github.com/slsrelay/slsrelay/bench/report"
	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/bench/targets"
)

// TestMain lets the test binary be the bench's executable: re-executed
// with a child flag, it runs the relay or the stand-in, as cmd/slsbench does.
func TestMain(m *testing.M) {
	targets.ExitIfChild()
	os.Exit(m.Run())
}

// exe is this test binary, re-executed for the children.
func exe(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tiny is a scenario small enough for a unit test: 2 connections,
// 3000 rec/s, Beats-like batching.
func tiny() Scenario {
	return Scenario{Name: "tiny", Profile: load.Profiles["beats"], Conns: 2, Acks: 1, Pace: load.Pace{Rate: 3000}}
}

// runE2E runs relay-e2e as slsbench does: the relay and the stand-in each
// in a process of its own.
func runE2E(t *testing.T, drop func(*slsfake.Remote) error) *report.Run {
	t.Helper()
	run := RunTarget(context.Background(), Options{
		Scenario: tiny(), Duration: 2 * time.Second, WorkDir: t.TempDir(), RelayExe: exe(t), StandInExe: exe(t),
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
		var cpu, standIn, bench float64
		for _, p := range run.Series {
			cpu, standIn, bench = cpu+p.CPU, standIn+p.StandInCPU, bench+p.BenchCPU
		}
		if cpu <= 0 || standIn <= 0 || bench <= 0 {
			t.Fatalf("CPU sampled per second: relay %v, stand-in %v, bench %v", cpu, standIn, bench)
		}
		// Three processes, each with its own CPU per GB.
		s := run.Summary
		if s.CPUShared || s.CPUSecPerGB <= 0 || s.StandInCPUSecPerGB <= 0 || s.BenchCPUSecPerGB <= 0 {
			t.Fatalf("CPU per GB: relay %v (shared %v), stand-in %v, bench %v", s.CPUSecPerGB, s.CPUShared, s.StandInCPUSecPerGB, s.BenchCPUSecPerGB)
		}
	})
	t.Run("DropNewest", func(t *testing.T) {
		var dropped int
		run := runE2E(t, func(s *slsfake.Remote) (err error) {
			dropped, err = s.DropNewest(targets.Project, targets.Topic, 1)
			return err
		})
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
		run := runE2E(t, func(s *slsfake.Remote) error {
			// Values start {"id":<id>,"ts": (load.Value).
			n, err := s.DropMatching(targets.Project, targets.Topic, fmt.Sprintf(`{"id":%d,"ts":`, victim))
			if err == nil && n != 1 {
				err = fmt.Errorf("dropped %d logs of id %d", n, victim)
			}
			return err
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
		{"ack-fsync", func(*Scenario) {}, AckFsync},
		{"ack-fsync/old-clients", func(s *Scenario) { s.OldClients = true }, AckFsync},
		{"ack-fsync/sasl-ssl", func(s *Scenario) { s.SASLSSL = true }, AckFsync},
		{"ack-fsync/raw", func(s *Scenario) { s.Raw, s.Conns = true, 50 }, AckFsync},
		{"relay-ack/raw/sasl-ssl", func(s *Scenario) { s.Raw, s.Conns, s.SASLSSL = true, 50, true }, RelayAck},
		{"relay-ack/sasl-ssl", func(s *Scenario) { s.SASLSSL = true }, RelayAck},
		{"relay-ack/old-clients", func(s *Scenario) { s.OldClients = true }, RelayAck},
		{"kfake", func(*Scenario) {}, Kfake},
		{"plain-file", func(*Scenario) {}, PlainFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := tiny()
			c.mod(&sc)
			d := time.Second
			if sc.Raw && sc.SASLSSL {
				// 50 TLS handshakes and logins before the first record:
				// under -race on a busy machine they took over a second,
				// and the run acknowledged nothing.
				d = 3 * time.Second
			}
			run := RunTarget(context.Background(), Options{Scenario: sc, Duration: d, WorkDir: t.TempDir()}, c.target)
			if run.Error != "" || run.Summary.Acked == 0 || run.Summary.Failed != 0 {
				t.Fatalf("error %q, acked %d, failed %d, notes %v", run.Error, run.Summary.Acked, run.Summary.Failed, run.Notes)
			}
			// franz-go's clients time each Produce round trip; the raw
			// fleet and the plain file do not.
			if timed := !sc.Raw && c.target != PlainFile; timed != (run.Summary.ReqP99 > 0) {
				t.Fatalf("Produce round trip p99 %v ms (timed: %v)", run.Summary.ReqP99, timed)
			}
		})
	}
}

// An outage run records its window (a third of the run in, as long as
// the outage) for the report to shade, and loses nothing.
func TestOutageWindowRecorded(t *testing.T) {
	sc := tiny()
	sc.Outage = time.Second
	run := RunTarget(context.Background(), Options{Scenario: sc, Duration: 3 * time.Second, WorkDir: t.TempDir(),
		StandInExe: exe(t), DrainTimeout: 30 * time.Second}, RelayE2E)
	if run.Error != "" || run.Loss == nil || !run.Loss.OK() {
		t.Fatalf("error %q, loss %+v", run.Error, run.Loss)
	}
	if len(run.Outages) != 1 || run.Outages[0] != (report.Window{From: 1, To: 2}) {
		t.Fatalf("outages %+v, want one from 1 s to 2 s", run.Outages)
	}
}

// relay-e2e's stand-in is always a process of its own: without an
// executable to start it from, the run says so instead of running it here.
func TestE2ENeedsStandInExe(t *testing.T) {
	run := RunTarget(context.Background(), Options{Scenario: tiny(), Duration: time.Second, WorkDir: t.TempDir()}, RelayE2E)
	if run.Error == "" || run.Loss != nil {
		t.Fatalf("error %q, loss %+v", run.Error, run.Loss)
	}
}
