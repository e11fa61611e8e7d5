package harness

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/slsrelay/slsrelay/bench/load"
	"github.com/slsrelay/slsrelay/bench/report"
	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/bench/targets"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// Options of one scenario run.
type Options struct {
	Scenario Scenario
	Duration time.Duration
	Targets  []string // default: the scenario's
	// WorkDir holds WALs, certificates and the plain file while a target
	// runs (removed after each).
	WorkDir string
	// RelayExe, when set, runs the relay targets as a child process of
	// that executable (cmd/slsbench re-executes itself); empty runs them
	// in this process.
	RelayExe string
	// StandInExe runs the relay-e2e target's SLS stand-in as a child
	// process of that executable (targets.StandInChildFlag): cmd/slsbench,
	// or a test binary whose TestMain hands the flag to
	// targets.RunStandInChild. relay-e2e needs it: the stand-in always
	// runs in a process of its own, reached through its socket only.
	StandInExe string
	Progress   io.Writer
	// DrainTimeout bounds the wait, after the load stops, for the relay's
	// backlog to reach the stand-in before the loss check. Default 120 s.
	DrainTimeout time.Duration
	// BeforeLossCheck, if set, runs against the stand-in just before the
	// loss check (tests use it to drop a record).
	BeforeLossCheck func(*slsfake.Remote) error
	Sizes           load.Sizes
	SLSQuota        bool // pace the writers to SLS's per-shard quota
}

// Run runs the scenario against each target in turn.
func Run(ctx context.Context, o Options) []*report.Run {
	ts := o.Targets
	if len(ts) == 0 {
		ts = o.Scenario.Targets
	}
	var runs []*report.Run
	for _, t := range ts {
		if ctx.Err() != nil {
			break
		}
		runs = append(runs, RunTarget(ctx, o, t))
	}
	return runs
}

// target is a started target.
type target struct {
	addr     string
	tls      *tls.Config
	user, pw string
	pid      int // 0: this process
	backlog  func() int64
	// standIn is relay-e2e's SLS stand-in, a child process (pid
	// standInPID) reached through its socket.
	standIn     *slsfake.Remote
	standInPID  int
	stopStandIn func() error // nil: no stand-in
	close       func() error
	notes       []string
}

func startTarget(o Options, name, dir string) (*target, error) {
	sc := o.Scenario
	t := &target{}
	switch name {
	case RelayE2E, RelayAck:
		spec := targets.RelaySpec{Mode: "ack", Dir: dir, Project: targets.Project, Topic: targets.Topic,
			Partitions: targets.Partitions, AKID: targets.AKID, Secret: targets.Secret, SLSQuota: o.SLSQuota}
		if name == RelayE2E {
			if o.StandInExe == "" {
				return nil, fmt.Errorf("relay-e2e runs the SLS stand-in as a child process: Options.StandInExe is not set")
			}
			fake, err := targets.StartStandInChild(o.StandInExe)
			if err != nil {
				return nil, err
			}
			t.standIn, t.standInPID, t.stopStandIn = fake.Remote, fake.Info.PID, fake.Close
			spec.Mode, spec.StandInAddr, spec.StandInHost = "e2e", fake.Info.Addr, fake.Info.Endpoint
		}
		var info targets.RelayInfo
		var stats func() targets.RelayStats
		var closeRelay func() error
		if o.RelayExe != "" {
			c, err := targets.StartRelayChild(o.RelayExe, spec)
			if err != nil {
				t.closeStandIn()
				return nil, err
			}
			info, stats, closeRelay = c.Info, c.Stats, c.Close
			t.pid = info.PID
		} else {
			r, err := targets.StartRelay(spec)
			if err != nil {
				t.closeStandIn()
				return nil, err
			}
			info, stats, closeRelay = r.Info, r.Stats, r.Close
			t.notes = append(t.notes, "relay ran in the bench process: CPU and RSS include the load generator")
		}
		t.backlog = func() int64 { return stats().BacklogBytes }
		t.close = func() error {
			err := closeRelay()
			if e := t.closeStandIn(); err == nil {
				err = e
			}
			return err
		}
		t.addr = info.Plain
		if sc.SASLSSL {
			cl, err := kafkatest.ClientTLS(info.CA)
			if err != nil {
				t.close()
				return nil, err
			}
			t.addr, t.tls = info.TLS, cl
		}
	case AckOnly, AckFsync, Kfake:
		var srv, cl *tls.Config
		if sc.SASLSSL {
			var err error
			if srv, cl, err = targets.ServerTLS(filepath.Join(dir, "tls")); err != nil {
				return nil, err
			}
		}
		switch name {
		case AckOnly, AckFsync:
			syncDir := "" // ack-only stores nothing
			if name == AckFsync {
				syncDir = dir
			}
			a, err := targets.StartAckOnly("127.0.0.1:0", srv, targets.Topic, targets.Partitions, syncDir)
			if err != nil {
				return nil, err
			}
			t.addr, t.close = a.Addr(), a.Close
		default:
			c, err := targets.StartKfake(srv)
			if err != nil {
				return nil, err
			}
			t.addr, t.close = c.ListenAddrs()[0], func() error { c.Close(); return nil }
		}
		t.tls = cl
	case PlainFile:
		t.close = func() error { return nil }
	default:
		return nil, fmt.Errorf("unknown target %q", name)
	}
	if sc.SASLSSL {
		t.user, t.pw = targets.Project, targets.AKID+"#"+targets.Secret
	}
	return t, nil
}

// closeStandIn stops the stand-in child, if there is one.
func (t *target) closeStandIn() error {
	if t.stopStandIn == nil {
		return nil
	}
	return t.stopStandIn()
}

// RunTarget runs the scenario against one target.
func RunTarget(ctx context.Context, o Options, name string) *report.Run {
	sc := o.Scenario
	run := &report.Run{Scenario: sc.Name, Target: name, Settings: sc.Settings(o.Duration)}
	run.Summary.Conns = sc.Conns
	if name == PlainFile {
		run.Summary.Conns = 0
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 120 * time.Second
	}
	dir := filepath.Join(o.WorkDir, sc.Name+"-"+name)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		run.Error = err.Error()
		return run
	}
	defer os.RemoveAll(dir)
	t, err := startTarget(o, name, dir)
	if err != nil {
		run.Error = "start: " + err.Error()
		return run
	}
	run.Notes = append(run.Notes, t.notes...)
	defer func() {
		if err := t.close(); err != nil && run.Error == "" {
			run.Notes = append(run.Notes, "close: "+err.Error())
		}
	}()

	st := &load.Stats{}
	cfg := load.Config{
		Addr: t.addr, Topic: targets.Topic, Partitions: targets.Partitions, Conns: sc.Conns, Raw: sc.Raw,
		Profile: sc.Profile, Acks: sc.Acks, Pace: sc.Pace, Sizes: o.Sizes, OldClients: sc.OldClients,
		TLS: t.tls, User: t.user, Password: t.pw,
	}
	cpu0 := readCPU(t)
	run.Summary.CPUShared = t.pid == 0

	start := time.Now()
	lctx, lcancel := context.WithTimeout(ctx, o.Duration)
	defer lcancel()
	var outage *outageWatch
	if sc.Outage > 0 && t.standIn != nil {
		at := o.Duration / 3
		outageErr := make(chan error, 1)
		tm := time.AfterFunc(at, func() { outageErr <- t.standIn.Outage(sc.Outage, slsfake.OutageError) })
		defer tm.Stop()
		defer func() {
			select {
			case err := <-outageErr:
				if err != nil {
					run.Notes = append(run.Notes, "the outage did not start: "+err.Error())
				}
			default:
				run.Notes = append(run.Notes, "the run ended before the outage began")
			}
		}()
		run.Outages = append(run.Outages, report.Window{From: at.Seconds(), To: (at + sc.Outage).Seconds()})
		run.Notes = append(run.Notes, fmt.Sprintf("SLS stand-in answered 503 from %v to %v", at, at+sc.Outage))
		outage = &outageWatch{end: start.Add(at + sc.Outage)}
		defer func() { run.Notes = append(run.Notes, outage.notes()...) }()
	}
	loadDone := make(chan error, 1)
	go func() {
		if name == PlainFile {
			loadDone <- targets.RunFile(lctx, dir, cfg, st)
			return
		}
		loadDone <- load.Run(lctx, cfg, st, 30*time.Second)
	}()

	// Sample every second while the load runs and, for the e2e relay,
	// while the backlog drains.
	smp := &sampler{o: o, run: run, st: st, t: t, start: start, cpu: cpu0}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var loadErr error
	loadEnd := time.Time{}
	drained := t.standIn == nil
	for {
		select {
		case <-tick.C:
			smp.sample()
			if outage != nil {
				outage.sample(time.Now(), t.standIn, t.backlog)
			}
		case loadErr = <-loadDone:
			loadEnd = time.Now()
			loadDone = nil
		}
		if loadDone == nil {
			if t.standIn == nil {
				break
			}
			if t.backlog() == 0 && smp.settled() {
				drained = true
				break
			}
			if time.Since(loadEnd) > o.DrainTimeout || ctx.Err() != nil {
				break
			}
			continue
		}
	}
	smp.sample()
	if loadErr != nil {
		run.Error = loadErr.Error()
	}
	if st.Acked.Load() == 0 && run.Error == "" {
		run.Error = "no record acknowledged"
		if e := st.Err(); e != "" {
			run.Error += ": " + e
		}
	}
	if e := st.Err(); e != "" {
		run.Notes = append(run.Notes, "last client error: "+e)
	}
	secs := loadEnd.Sub(start).Seconds()
	run.Seconds = secs
	s := &run.Summary
	s.Acked, s.Failed = st.Acked.Load(), st.Failed.Load()
	s.RecPerSec = float64(s.Acked) / secs
	s.RawMBps = float64(st.AckedBytes.Load()) / 1e6 / secs
	s.WireMBps = float64(st.WireBytes.Load()) / 1e6 / secs
	lat := st.Lat.Snapshot()
	s.AckP50, s.AckP99, s.AckP999 = report.Clean(lat.Quantile(0.5)), report.Clean(lat.Quantile(0.99)), report.Clean(lat.Quantile(0.999))
	s.AckMax = float64(lat.Max) / 1000
	req := st.ReqLat.Snapshot()
	s.ReqP99, s.ReqP999 = report.Clean(req.Quantile(0.99)), report.Clean(req.Quantile(0.999))
	s.Throttles = st.Throttles.Load()
	s.ThrottleSec = float64(st.ThrottleUs.Load()) / 1e6
	used := readCPU(t).since(cpu0)
	s.CPUSeconds, s.StandInCPUSeconds, s.BenchCPUSeconds = used.target, used.standIn, used.bench
	if b := st.AckedBytes.Load(); b > 0 {
		gb := float64(b) / 1e9
		s.CPUSecPerGB, s.BenchCPUSecPerGB = s.CPUSeconds/gb, s.BenchCPUSeconds/gb
		if t.standIn != nil {
			s.StandInCPUSecPerGB = s.StandInCPUSeconds / gb
		}
	}
	if t.standIn != nil {
		if o.BeforeLossCheck != nil {
			if err := o.BeforeLossCheck(t.standIn); err != nil && run.Error == "" {
				run.Error = "before the loss check: " + err.Error()
			}
		}
		began := time.Now()
		loss, err := lossCheck(t.standIn, st, start, run)
		if err != nil {
			run.Error = "loss check: " + err.Error()
		} else {
			run.Loss = loss
			run.Loss.Drained = drained
			run.Notes = append(run.Notes, fmt.Sprintf("loss check: read %d logs back through PullLogs in %v (after the CPU figures)",
				loss.Received, time.Since(began).Round(100*time.Millisecond)))
		}
	}
	return run
}

// cpuSeconds are the CPU seconds (user + system) of the processes of a
// run: the target's (the bench's own when it runs in-process), the
// stand-in child's (relay-e2e) and the bench's, whose work is the load
// generator's (and an in-process target's).
type cpuSeconds struct {
	target, standIn, bench float64
	ok                     bool // the target's was read
}

func readCPU(t *target) cpuSeconds {
	var c cpuSeconds
	if p, err := targets.ReadProc(t.pid); err == nil {
		c.target, c.ok = p.CPUSeconds, true
	}
	if t.standInPID != 0 {
		if p, err := targets.ReadProc(t.standInPID); err == nil {
			c.standIn = p.CPUSeconds
		}
	}
	if p, err := targets.ReadProc(0); err == nil {
		c.bench = p.CPUSeconds
	}
	return c
}

// since is the CPU used from c0 to c.
func (c cpuSeconds) since(c0 cpuSeconds) cpuSeconds {
	return cpuSeconds{target: c.target - c0.target, standIn: c.standIn - c0.standIn, bench: c.bench - c0.bench, ok: c.ok && c0.ok}
}

type sampler struct {
	o         Options
	run       *report.Run
	st        *load.Stats
	t         *target
	start     time.Time
	last      time.Time
	acked     int64
	raw, wire int64
	thr       int64
	cpu       cpuSeconds // the processes' CPU seconds at the last sample
	lat       load.Snapshot
	delivered int
	stable    int
}

func (m *sampler) sample() {
	now := time.Now()
	prev := m.last
	if prev.IsZero() {
		prev = m.start
	}
	dt := now.Sub(prev).Seconds()
	if dt < 0.5 {
		return
	}
	m.last = now
	acked, raw, wire, thr := m.st.Acked.Load(), m.st.AckedBytes.Load(), m.st.WireBytes.Load(), m.st.ThrottleUs.Load()
	lat := m.st.Lat.Snapshot()
	d := lat.Sub(m.lat)
	p := report.Sample{
		T:         math.Round(now.Sub(m.start).Seconds()*10) / 10,
		RecPerSec: float64(acked-m.acked) / dt,
		RawMBps:   float64(raw-m.raw) / 1e6 / dt,
		WireMBps:  float64(wire-m.wire) / 1e6 / dt,
		P50:       report.Clean(d.Quantile(0.5)),
		P99:       report.Clean(d.Quantile(0.99)),
		P999:      report.Clean(d.Quantile(0.999)),
		Throttle:  float64(thr-m.thr) / 1000 / dt,
	}
	m.acked, m.raw, m.wire, m.thr, m.lat = acked, raw, wire, thr, lat
	if m.t.backlog != nil {
		p.BacklogMB = float64(m.t.backlog()) / 1e6
	}
	if pr, err := targets.ReadProc(m.t.pid); err == nil {
		p.RSSMB = float64(pr.RSSBytes) / 1e6
	}
	cpu := readCPU(m.t)
	if d := cpu.since(m.cpu); d.ok {
		p.CPU, p.StandInCPU, p.BenchCPU = d.target/dt, d.standIn/dt, d.bench/dt
	}
	m.cpu = cpu
	if m.t.standIn != nil {
		n, err := m.t.standIn.LogCount(targets.Project, targets.Topic)
		if err != nil {
			n = m.delivered // unknown this second: not counted as settled either
			m.stable = -1
		}
		p.Delivered = float64(n-m.delivered) / dt
		if n == m.delivered {
			m.stable++
		} else {
			m.stable = 0
		}
		m.delivered = n
	}
	s := &m.run.Summary
	s.PeakRSSMB = math.Max(s.PeakRSSMB, p.RSSMB)
	s.PeakBacklog = math.Max(s.PeakBacklog, p.BacklogMB)
	m.run.Series = append(m.run.Series, p)
	if m.o.Progress != nil {
		fmt.Fprintf(m.o.Progress, "[%s/%s] %5.0fs  acked %8.0f rec/s  %7.1f MB/s  p99 %8.2f ms  backlog %7.1f MB  rss %6.0f MB\n",
			m.run.Scenario, m.run.Target, p.T, p.RecPerSec, p.RawMBps, p.P99, p.BacklogMB, p.RSSMB)
	}
}

// settled: the stand-in's count stopped moving and matches what was acked.
func (m *sampler) settled() bool {
	return m.stable >= 1 && int64(m.delivered) >= m.st.Acked.Load()
}

// lossCheck reads every log the stand-in holds, through the SDK as SLS is
// read, and checks each acked id arrived; it also fills the end-to-end
// latency (send → stored).
func lossCheck(fake *slsfake.Remote, st *load.Stats, start time.Time, run *report.Run) (*report.Loss, error) {
	l := &report.Loss{Acked: st.AckedIDs.Len()}
	seen := &load.IDSet{}
	var e2e load.Histogram
	perSec := map[int]*load.Histogram{}
	err := fake.ReadLogs(targets.Project, targets.Topic, targets.AKID, targets.Secret, func(received time.Time, lg *sls.LogGroup) {
		for _, log := range lg.Logs {
			var content string
			for _, kv := range log.Contents {
				if kv.GetKey() == "content" {
					content = kv.GetValue()
					break
				}
			}
			id, ts, ok := load.ParseValue([]byte(content))
			if !ok {
				continue
			}
			l.Received++
			if !seen.Set(id) {
				l.Duplicates++
				continue
			}
			if !st.AckedIDs.Has(id) {
				l.Unacked++
			}
			if received.IsZero() {
				continue // arrived after the check began: no latency
			}
			d := received.Sub(ts)
			e2e.Record(d)
			sec := int(received.Sub(start).Seconds()) + 1
			h := perSec[sec]
			if h == nil {
				h = &load.Histogram{}
				perSec[sec] = h
			}
			h.Record(d)
		}
	})
	if err != nil {
		return nil, err
	}
	st.AckedIDs.Range(func(id uint64) {
		if !seen.Has(id) {
			l.Missing++
			if len(l.FirstMiss) < 10 {
				l.FirstMiss = append(l.FirstMiss, int64(id))
			}
		}
	})
	s := &run.Summary
	s.E2EP50, s.E2EP99, s.E2EP999 = report.Clean(e2e.Quantile(0.5)), report.Clean(e2e.Quantile(0.99)), report.Clean(e2e.Quantile(0.999))
	for i := range run.Series {
		sec := int(math.Round(run.Series[i].T))
		if h := perSec[sec]; h != nil {
			run.Series[i].E2EP99 = report.Clean(h.Quantile(0.99))
		}
	}
	return l, nil
}
