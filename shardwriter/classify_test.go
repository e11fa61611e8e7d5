package shardwriter

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/slsrelay/slsrelay/bench/slsfake"
)

// ctRow is one row of the error table as SLS would answer it.
type ctRow struct {
	name    string
	status  int
	code    string
	message string
	want    errorRule
}

// ctRows lists every code of errorCodes with the status SLS answers it
// with, the answers decided by status alone, and the write-denied 401.
func ctRows() []ctRow {
	status := func(code string, r errorRule) int {
		switch {
		case code == "InternalServerError" || code == "RequestTimeout":
			return 500
		case code == "ServerBusy":
			return 503
		case r == ruleQuota || code == "ProjectForbidden" || code == "WriteNotAllowed":
			return 403
		case r == ruleNotExist || r == ruleShardGone:
			return 404
		case r == rulePassingAuth || r == ruleKeyGone:
			return 401
		case code == "MissingContentLength":
			return 411
		case code == "InvalidContentType":
			return 415
		}
		return 400
	}
	var rows []ctRow
	for code, r := range errorCodes {
		rows = append(rows, ctRow{code, status(code, r), code, "test answer", r})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	return append(rows,
		ctRow{"write-denied", 401, "Unauthorized", "denied by sts or ram, action: log:PostLogStoreLogs, resource: acs:log:*:*:project/p/logstore/l", ruleWriteDenied},
		ctRow{"unknown-400", 400, "SomethingNew", "x", ruleUnknown400},
		ctRow{"unknown-401", 401, "SomethingNew", "x", rulePassingAuth},
		ctRow{"unknown-403", 403, "SomethingNew", "x", rulePassingAuth},
		ctRow{"unknown-404", 404, "SomethingNew", "x", ruleUnknown404},
		ctRow{"unknown-413", 413, "SomethingNew", "x", ruleInvalidBody},
		ctRow{"unknown-429", 429, "SomethingNew", "x", ruleServer},
		ctRow{"unknown-502", 502, "SomethingNew", "x", ruleServer},
		ctRow{"unknown-409", 409, "SomethingNew", "x", ruleUnknown4xx},
	)
}

// Each row through the real SDK against the stand-in: the SDK's error is
// classified as the table says, and KafkaErrorOf gives the row's Kafka
// error.
func TestErrorTableThroughSDK(t *testing.T) {
	s := wtStandIn(t)
	pool := &clientPool{endpoint: s.Endpoint(), http: s.HTTPClient(), retryTimeout: time.Second}
	cl := pool.get(wtCred)
	raw := ctGroup(t)
	f := func(r ctRow) {
		t.Helper()
		id, err := s.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Status: r.status, ErrorCode: r.code, ErrorMessage: r.message, Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer s.RemoveFault(id)
		err = cl.PostRawLogWithCompressType(wtProject, wtLogstore, raw, 1, nil)
		if err == nil {
			t.Fatalf("%s: PutLogs succeeded", r.name)
		}
		got, reason := ruleFor(err)
		if got != r.want {
			t.Errorf("%s: rule %+v, want %+v (error %v)", r.name, got, r.want, err)
		}
		if !strings.Contains(reason, fmt.Sprint(r.status)) || strings.Contains(reason, wtCred.AccessKeySecret) {
			t.Errorf("%s: reason %q", r.name, reason)
		}
		if k := KafkaErrorOf(err); k != r.want.kafka {
			t.Errorf("%s: Kafka error %v, want %v", r.name, k, r.want.kafka)
		}
	}
	for _, r := range ctRows() {
		f(r)
	}
	// A transport failure: the connection is reset.
	if _, err := s.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Reset: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	err := cl.PostRawLogWithCompressType(wtProject, wtLogstore, raw, 1, nil)
	if got, _ := ruleFor(err); err == nil || got != ruleNetwork || KafkaErrorOf(err) != ruleNetwork.kafka {
		t.Errorf("reset: error %v, rule %+v", err, got)
	}
	if KafkaErrorOf(nil) != nil {
		t.Error("KafkaErrorOf(nil) is not nil")
	}
}

// Each row through the writer: retried rows are delivered after the fault
// passes, with back-off and no dead letter; dead-letter rows make one dead
// letter without splitting; split rows are split down to single logs;
// alerting rows count in slsrelay_sls_alert_errors_total.
func TestWriterErrorTable(t *testing.T) {
	for _, r := range ctRows() {
		t.Run(r.name, func(t *testing.T) {
			e := wtStart(t, nil)
			count := 2
			if r.want.verdict == split {
				count = 0 // every request: split down to single logs
			}
			if _, err := e.s.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Status: r.status, ErrorCode: r.code, ErrorMessage: r.message, Count: count}); err != nil {
				t.Fatal(err)
			}
			alert := metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_sls_alert_errors_total{code=%q}`, r.code))
			before := alert.Get()
			e.append(wtRecords("x", 4))
			e.svc.Start()
			switch r.want.verdict {
			case retry, refreshRetry:
				e.waitFor("4 logs", func() bool { return len(e.stored()) == 4 })
				if n := e.svc.Stats().Retries.Load(); n != 2 || e.w.DeadLetterCount() != 0 {
					t.Fatalf("%d retries, %d dead letters", n, e.w.DeadLetterCount())
				}
			case deadLetter:
				e.waitFor("a dead letter", func() bool { return e.w.DeadLetterCount() == 1 })
				time.Sleep(50 * time.Millisecond)
				if n, puts := len(e.stored()), e.hook.puts.Load(); n != 0 || puts != 1 {
					t.Fatalf("%d logs stored, %d PutLogs (want 0 and 1: no split)", n, puts)
				}
			case split:
				e.waitFor("a dead letter", func() bool { return e.w.DeadLetterCount() == 1 })
				time.Sleep(50 * time.Millisecond)
				// 4 logs: the group, 2 halves, 4 singles.
				if n, puts := len(e.stored()), e.hook.puts.Load(); n != 0 || puts != 7 {
					t.Fatalf("%d logs stored, %d PutLogs (want 0 and 7)", n, puts)
				}
				_, recs := e.deadRecords()
				if len(recs) != 1 || len(recs[0]) != 4 {
					t.Fatalf("dead letters hold %v", recs)
				}
			}
			if got := alert.Get() - before; r.want.alert != (got > 0) {
				t.Fatalf("alert counter grew by %d, alert %v", got, r.want.alert)
			}
		})
	}
}

// ctGroup returns a valid LogGroup of one log.
func ctGroup(t *testing.T) []byte {
	c := NewConverter(ConvertOptions{})
	g := NewLogGroupBuilder(LogGroupLimits{})
	e := wtEntry(t, wtRecords("g", 1))
	if _, err := c.Convert(g, e, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), g.Bytes("", "", nil)...)
}
