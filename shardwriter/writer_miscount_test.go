package shardwriter

import (
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// A magic 1 wrapper counted by its offset (batch/wrappercount.go) may
// hold more messages than its offset says: the ack path takes the
// producer's word, and the writer delivers every inner message. When SLS
// refuses as many of its logs as the entry's count, the entry is not all
// refused: the dead letter must hold just the refused records, so that a
// replay sends each log once — not the whole entry, which would send the
// logs SLS took a second time.
func TestWriterDeadLettersMiscountedWrapper(t *testing.T) {
	for _, codec := range []batchtest.Codec{batchtest.Gzip, batchtest.LZ4} {
		t.Run(codec.Name, func(t *testing.T) {
			e := wtStart(t, nil)
			marker := "REFUSE-ME"
			e.hook.refuse.Store(&marker)
			recs := wtRecords("w", 4)
			for i := range recs {
				recs[i].Headers = nil // a MessageSet has none
			}
			recs[1].Value = []byte("w-001 " + marker)
			recs[3].Value = []byte("w-003 " + marker)
			inner := batchtest.MessageSet(t, 1, recs, batchtest.None, 0) // offsets 0..3
			// The wrapper at offset 1: two records, says the producer.
			data := batchtest.Message(1, 1, codec.ID, recs[3].Timestamp, nil, codec.Compress(t, inner))
			info, err := batch.Validate(data, batch.ValidateOptions{ProduceVersion: 2})
			if err != nil || !info.Unopened || info.Records != 2 {
				t.Fatalf("the ack path must count the wrapper by its offset (2 records, unopened): %+v, %v", info, err)
			}
			e.appendEntry(&wal.Entry{Magic: info.Magic, Codec: info.Codec, Records: info.Records, ReceivedAt: time.Now().UnixNano(),
				Producer: "127.0.0.1:5555", ClientID: "wt", Credential: wtCred, Data: data})

			e.svc.Start()
			e.waitFor("2 logs and 1 dead letter", func() bool {
				return len(e.stored()) == 2 && e.w.DeadLetterCount() == 1
			})
			time.Sleep(100 * time.Millisecond) // nothing more comes
			if got, want := e.stored(), []string{"w-000", "w-002"}; !reflect.DeepEqual(sorted(got), want) {
				t.Fatalf("stand-in holds %q, want %q", got, want)
			}
			dls := e.deadLetterValues()
			if want := [][]string{{string(recs[1].Value), string(recs[3].Value)}}; !reflect.DeepEqual(dls, want) {
				t.Fatalf("dead letters hold %q, want only the refused records %q", dls, want)
			}

			// SLS takes them now: the replay delivers each log once.
			e.hook.refuse.Store(nil)
			for dl, err := range e.w.DeadLetters() {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.w.Replay(dl.ID); err != nil {
					t.Fatal(err)
				}
			}
			e.waitFor("4 logs", func() bool { return len(e.stored()) >= 4 })
			time.Sleep(100 * time.Millisecond)
			var want []string
			for _, r := range recs {
				want = append(want, string(r.Value))
			}
			if got := sorted(e.stored()); !slices.Equal(got, sorted(want)) {
				t.Fatalf("after the replay the stand-in holds %q, want each of %q once", got, want)
			}
		})
	}
}

// deadLetterValues returns the values of the records each dead letter
// holds, whatever count its entry says.
func (e *wtEnv) deadLetterValues() [][]string {
	e.t.Helper()
	var out [][]string
	var d batch.Decoder
	for dl, err := range e.w.DeadLetters() {
		if err != nil {
			e.t.Fatal(err)
		}
		var vs []string
		if err := d.Decode(dl.Entry.Magic, dl.Entry.Data, batch.DecodeOptions{}, func(r *batch.Record) error {
			vs = append(vs, string(r.Value))
			return nil
		}); err != nil {
			e.t.Fatalf("dead letter %d does not decode: %v", dl.ID, err)
		}
		out = append(out, vs)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
