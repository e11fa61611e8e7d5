package shardwriter

import (
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// What the ack path accepts without opening it (batch.Info.Unopened) — a
// compressed v2 batch, a magic 1 wrapper counted by its offset — is checked
// by the writer: corrupt insides under a valid CRC make the entry a dead
// letter, stored as it came, and the entries around it are delivered. The
// same for both formats.
func TestWriterDeadLettersCorruptUnopened(t *testing.T) {
	e := wtStart(t, nil)
	recs := func(name string) []batchtest.Record {
		rs := wtRecords(name, 3)
		for i := range rs {
			rs[i].Headers = nil // a MessageSet has none
		}
		return rs
	}
	innerSet := func(rs []batchtest.Record) []byte {
		return batchtest.MessageSet(t, 1, rs, batchtest.None, 0)
	}
	flipLast := func(b []byte) []byte { b[len(b)-1] ^= 1; return b }
	ts := time.Now().UnixMilli()

	var want []string
	var wantDead [][]byte
	add := func(name string, data []byte, produceVersion int16, corrupt bool) {
		t.Helper()
		info, err := batch.Validate(data, batch.ValidateOptions{ProduceVersion: produceVersion})
		if err != nil || !info.Unopened {
			t.Fatalf("%s: the ack path must accept it unopened: %+v, %v", name, info, err)
		}
		e.appendEntry(&wal.Entry{Magic: info.Magic, Codec: info.Codec, Records: info.Records, ReceivedAt: time.Now().UnixNano(),
			Producer: "127.0.0.1:5555", ClientID: "wt", Credential: wtCred, Data: data})
		if corrupt {
			wantDead = append(wantDead, data)
		}
	}
	good := func(name string) []batchtest.Record {
		rs := recs(name)
		for _, r := range rs {
			want = append(want, string(r.Value))
		}
		return rs
	}

	add("v1 counted", batchtest.MessageSet(t, 1, good("a"), batchtest.Gzip, 0), 2, false)
	add("v1 counted, inner crc", batchtest.Message(1, 2, batchtest.Gzip.ID, ts, nil, batchtest.Gzip.Compress(t, flipLast(innerSet(recs("x"))))), 2, true)
	add("v2 gzip", batchtest.RecordBatch(t, good("b"), batchtest.Gzip, nil), 9, false)
	add("v2 gzip, records garbage", batchtest.RecordBatch(t, recs("y"), batchtest.Gzip, func(b *kmsg.RecordBatch) {
		b.Records = batchtest.Gzip.Compress(t, []byte("not records at all"))
	}), 9, true)
	add("v1 counted, lz4", batchtest.MessageSet(t, 1, good("c"), batchtest.LZ4, 0), 2, false)

	e.svc.Start()
	e.waitFor("9 logs and 2 dead letters", func() bool {
		return len(e.stored()) == len(want) && e.w.DeadLetterCount() == 2
	})
	time.Sleep(100 * time.Millisecond) // nothing more comes
	got := e.stored()
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stand-in holds %q, want %q", got, want)
	}
	var dead [][]byte
	for dl, err := range e.w.DeadLetters() {
		if err != nil {
			t.Fatal(err)
		}
		dead = append(dead, dl.Entry.Data)
	}
	if !reflect.DeepEqual(dead, wantDead) {
		t.Fatalf("dead letters hold %d entries, not the two corrupt ones as they came", len(dead))
	}
}
