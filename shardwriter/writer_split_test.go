package shardwriter

import (
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// A PutLogs refused for its body is split until the refused logs are
// found: only their records become dead letters (holding exactly those
// records, key, headers and timestamp kept), every other log is delivered
// once, and replaying the dead letters (once SLS takes them) delivers them
// without sending any log twice. With small groups an entry spans several
// of them, and a refused log in one of its groups does not take the
// entry's other logs along (the spanning-entry case).
func TestWriterSplitsRefusedLogs(t *testing.T) {
	for _, maxLogs := range []int{0, 16} {
		t.Run(map[int]string{0: "one-group", 16: "spanning"}[maxLogs], func(t *testing.T) {
			e := wtStart(t, func(o *Options) { o.LogGroup.MaxLogs = maxLogs })
			marker := "REFUSE-ME"
			e.hook.refuse.Store(&marker)
			a, b, c := wtRecords("a", 40), wtRecords("b", 40), wtRecords("c", 40)
			b[17].Value = []byte("b-017 " + marker)
			c[5].Value = []byte("c-005 " + marker)
			c[6].Value = []byte("c-006 " + marker)
			var want []string
			for _, rs := range [][]batchtest.Record{a, b, c} {
				e.append(rs)
				for _, r := range rs {
					want = append(want, string(r.Value))
				}
			}
			e.svc.Start()
			e.waitFor("117 logs and 2 dead letters", func() bool {
				return len(e.stored()) == 117 && e.w.DeadLetterCount() == 2
			})
			time.Sleep(100 * time.Millisecond) // nothing more comes
			got := e.stored()
			sort.Strings(got)
			var wantSent []string
			for _, v := range want {
				if v != string(b[17].Value) && v != string(c[5].Value) && v != string(c[6].Value) {
					wantSent = append(wantSent, v)
				}
			}
			sort.Strings(wantSent)
			if !reflect.DeepEqual(got, wantSent) {
				t.Fatalf("stand-in holds %d logs, want %d (each once)", len(got), len(wantSent))
			}
			dls, recs := e.deadRecords()
			if len(dls) != 2 {
				t.Fatalf("%d dead letters", len(dls))
			}
			wantDead := [][]batchtest.Record{{b[17]}, {c[5], c[6]}}
			for i := range dls {
				if !reflect.DeepEqual(recs[i], wantDead[i]) {
					t.Errorf("dead letter %d holds %+v, want %+v", i, recs[i], wantDead[i])
				}
				if dls[i].Entry.Credential != wtCred || dls[i].Entry.Magic != 2 || dls[i].Entry.Codec != 0 {
					t.Errorf("dead letter %d: entry %+v", i, dls[i].Entry)
				}
			}
			if refused := e.hook.refused.Load(); refused > 2*int64(len(want)) {
				t.Errorf("%d refused requests: splitting is not bounded", refused)
			}
			// SLS now takes them: a replay delivers exactly the refused logs.
			e.hook.refuse.Store(nil)
			for _, dl := range dls {
				if _, err := e.w.Replay(dl.ID); err != nil {
					t.Fatal(err)
				}
			}
			e.waitFor("all 120 logs", func() bool { return len(e.stored()) == 120 })
			time.Sleep(100 * time.Millisecond)
			got = e.stored()
			sort.Strings(got)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Fatalf("after replay the stand-in holds %d logs, want each of %d once", len(got), len(want))
			}
			if n := e.w.DeadLetterCount(); n != 0 {
				t.Fatalf("%d dead letters left", n)
			}
		})
	}
}
