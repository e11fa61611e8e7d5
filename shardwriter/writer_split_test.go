package shardwriter

import (
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/bench/slsfake"
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

// An entry that spans LogGroups while SLS refuses every write for good
// (the Logstore is gone): each group's share of it becomes its own dead
// letter, so the dead letters together hold each record once, and
// replaying them all (the Logstore back) delivers each log exactly once.
func TestWriterDeadLetterSpanningEntry(t *testing.T) {
	e := wtStart(t, func(o *Options) { o.LogGroup.MaxLogs = 16 })
	id, err := e.s.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Status: 404, ErrorCode: "LogStoreNotExist"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := wtRecords("a", 40), wtRecords("b", 10)
	e.append(a)
	e.append(b)
	e.svc.Start()
	// Groups of 16: a[0:16], a[16:32], a[32:40] with b[0:8] and b[8:10]
	// (5 dead letters), or, should b be read after a's last group went,
	// a[32:40] and b (4).
	e.waitFor("dead letters of all 50 records", func() bool {
		_, recs := e.deadRecords()
		n := 0
		for _, rs := range recs {
			n += len(rs)
		}
		return n >= 50
	})
	time.Sleep(100 * time.Millisecond)
	dls, recs := e.deadRecords()
	var got []string
	for _, rs := range recs {
		for _, r := range rs {
			got = append(got, string(r.Value))
		}
	}
	var want []string
	for _, r := range append(slices.Clone(a), b...) {
		want = append(want, string(r.Value))
	}
	sort.Strings(got)
	sort.Strings(want)
	if len(dls) != 5 && len(dls) != 4 || !slices.Equal(got, want) {
		t.Fatalf("%d dead letters hold %d records, want each of %d once", len(dls), len(got), len(want))
	}
	e.s.RemoveFault(id)
	for _, dl := range dls {
		if _, err := e.w.Replay(dl.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.waitFor("50 logs", func() bool { return len(e.stored()) == 50 })
	time.Sleep(100 * time.Millisecond)
	got = e.stored()
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("after replay the stand-in holds %d logs, want each of %d once", len(got), len(want))
	}
}

// A batch whose records repeat an offset delta (all 0 here; the front
// end acknowledges it: Kafka's rule that offset deltas count from 0 is
// not checked) with one record SLS refuses: the dead letter holds that
// record, not another one with the same delta, and every other record is
// delivered once. The WAL numbers a batch's records by their place in it,
// so that place is what names a refused record.
func TestWriterDeadLettersRecordByPlace(t *testing.T) {
	e := wtStart(t, nil)
	marker := "REFUSE-ME"
	e.hook.refuse.Store(&marker)
	recs := wtRecords("dup", 4)
	recs[2].Value = []byte("dup-002 " + marker)
	var body []byte
	for _, r := range recs {
		body = append(body, batchtest.EncodeRecords([]batchtest.Record{r}, recs[0].Timestamp)...) // offset delta 0 each
	}
	data := batchtest.UncompressedRecordBatch(recs, func(b *kmsg.RecordBatch) { b.Records = body })
	en := wtEntry(t, recs)
	en.Codec, en.Data = 0, data
	e.appendEntry(en)
	e.svc.Start()
	e.waitFor("3 logs and a dead letter", func() bool { return len(e.stored()) == 3 && e.w.DeadLetterCount() == 1 })
	time.Sleep(100 * time.Millisecond)
	got := e.stored()
	sort.Strings(got)
	if want := []string{"dup-000", "dup-001", "dup-003"}; !slices.Equal(got, want) {
		t.Errorf("the stand-in holds %q, want %q", got, want)
	}
	_, dead := e.deadRecords()
	if len(dead) != 1 || !reflect.DeepEqual(dead[0], recs[2:3]) {
		var values []string
		for _, rs := range dead {
			for _, r := range rs {
				values = append(values, string(r.Value))
			}
		}
		t.Errorf("the dead letters hold %q, want the refused record %q alone", values, recs[2].Value)
	}
}
