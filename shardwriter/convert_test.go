package shardwriter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cvtNow is the reference time of most tests; records are a little older.
var cvtNow = time.Unix(1_700_000_100, 250_000_000)

// cvtReceived is the ReceivedAt of most test entries: in the window.
var cvtReceived = cvtNow.Add(-30 * time.Second).UnixNano()

func cvtSampleRecords(n int) []batchtest.Record {
	base := cvtNow.Add(-time.Minute).UnixMilli()
	recs := make([]batchtest.Record, n)
	for i := range recs {
		r := batchtest.Record{Timestamp: base + int64(i)*7 + int64(i%3)}
		switch i % 5 {
		case 0:
			r.Key = []byte(fmt.Sprint("k-", i))
			r.Value = []byte(fmt.Sprintf("line %d: GET /index.html 200 %s", i, strings.Repeat("x", i)))
		case 1: // null value and key; headers
			r.Headers = []kmsg.Header{{Key: "data-parse-format", Value: []byte("json")}, {Key: "h1", Value: []byte("v1")}, {Key: "nil"}}
		case 2:
			r.Key = []byte{}
			r.Value = []byte(fmt.Sprintf(`{"msg":"hello \"%d\"","n":%d,"nested":{"a":[1, 2]},"nil":null}`, i, i))
			r.Headers = []kmsg.Header{{Key: "Data-Parse-Format", Value: []byte("JSON")}}
		case 3:
			r.Value = []byte{}
		case 4:
			r.Value = []byte(`{"a":`)
			r.Headers = []kmsg.Header{{Key: "data-parse-format", Value: []byte("json")}}
		}
		recs[i] = r
	}
	return recs
}

// cvtWantContents is the model of a record's fields (DESIGN.md's contract
// table plus the options), built on encoding/json.
func cvtWantContents(r batchtest.Record, jsonMode bool, opt ConvertOptions) [][2]string {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, "data-parse-format") && strings.EqualFold(string(h.Value), "json") {
			jsonMode = true
		}
	}
	var out [][2]string
	if jsonMode {
		out, _ = cvtRefJSON(r.Value)
	}
	if out == nil {
		out = [][2]string{{"content", string(r.Value)}}
	}
	if opt.KeyField != "" && r.Key != nil {
		out = append(out, [2]string{opt.KeyField, string(r.Key)})
	}
	if opt.HeadersAsFields {
		for _, h := range r.Headers {
			if strings.EqualFold(h.Key, "data-parse-format") || opt.HeaderPrefix+h.Key == "" {
				continue
			}
			out = append(out, [2]string{opt.HeaderPrefix + h.Key, string(h.Value)})
		}
	}
	return out
}

func cvtTime(ns int64) (uint32, uint32) { return uint32(ns / 1e9), uint32(ns % 1e9) }

func cvtMsTime(ms int64) (uint32, uint32) { return cvtTime(ms * 1e6) }

// cvtConvert converts one entry into a fresh group and returns every log.
func cvtConvert(t *testing.T, c *Converter, e *wal.Entry, lim LogGroupLimits) ([]cvtLog, *cvtCollect) {
	t.Helper()
	g := NewLogGroupBuilder(lim)
	col := &cvtCollect{tb: t}
	n, err := c.Convert(g, e, cvtNow, col.flush)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	logs := col.logs(g)
	if n != len(logs) {
		t.Fatalf("Convert returned %d, delivered %d logs", n, len(logs))
	}
	return logs, col
}

func TestConvertRoundTrip(t *testing.T) {
	recs := cvtSampleRecords(23)
	plain := make([]batchtest.Record, len(recs)) // a MessageSet has no headers
	for i, r := range recs {
		plain[i] = r
		plain[i].Headers = nil
	}
	opts := map[string]ConvertOptions{
		"default":     {},
		"key+headers": {KeyField: "kafka_key", HeadersAsFields: true, HeaderPrefix: "h."},
	}
	for _, magic := range []int8{0, 1, 2} {
		for _, codec := range batchtest.Codecs {
			if magic < 2 && codec.ID == 4 {
				continue // zstd came with magic 2
			}
			var data []byte
			want := recs
			if magic == 2 {
				data = batchtest.RecordBatch(t, recs, codec, nil)
			} else {
				data = batchtest.MessageSet(t, magic, plain, codec, 0)
				want = plain
			}
			for optName, opt := range opts {
				for _, jsonMode := range []bool{false, true} {
					name := fmt.Sprintf("v%d/%s/%s/json=%v", magic, codec.Name, optName, jsonMode)
					t.Run(name, func(t *testing.T) {
						e := &wal.Entry{Magic: magic, Codec: codec.ID, Records: int32(len(recs)), ReceivedAt: cvtReceived, JSON: jsonMode, Data: data}
						logs, _ := cvtConvert(t, NewConverter(opt), e, LogGroupLimits{})
						if len(logs) != len(want) {
							t.Fatalf("%d logs, want %d", len(logs), len(want))
						}
						for i, r := range want {
							sec, ns := cvtMsTime(r.Timestamp)
							if magic == 0 {
								sec, ns = cvtTime(cvtReceived)
							}
							w := cvtLog{Time: sec, TimeNs: ns, Contents: cvtWantContents(r, jsonMode, opt)}
							if !reflect.DeepEqual(logs[i], w) {
								t.Fatalf("log %d:\n got %+v\nwant %+v", i, logs[i], w)
							}
						}
					})
				}
			}
		}
	}
}

// TestConvertRealWorld converts the batches real clients sent to a broker
// (recorded for wal/batch) and checks them against wal/batch's decoding.
func TestConvertRealWorld(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "wal", "batch", "testdata", "realworld", "*.bin"))
	if len(files) == 0 {
		t.Skip("no recorded batches in wal/batch/testdata/realworld")
	}
	c := NewConverter(ConvertOptions{KeyField: "key", HeadersAsFields: true})
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		magic := int8(data[16])
		var recs []batchtest.Record
		var d batch.Decoder
		err = d.Decode(magic, data, batch.DecodeOptions{}, func(r *batch.Record) error {
			cr := batchtest.Record{Key: cvtClone(r.Key), Value: cvtClone(r.Value), Timestamp: r.Timestamp}
			for _, h := range r.Headers {
				cr.Headers = append(cr.Headers, kmsg.Header{Key: h.Key, Value: cvtClone(h.Value)})
			}
			recs = append(recs, cr)
			return nil
		})
		if err != nil || len(recs) == 0 {
			t.Fatalf("%s: %d records, %v", file, len(recs), err)
		}
		// Whenever they were recorded, put the records in the window.
		now := cvtNow
		if recs[0].Timestamp >= 0 {
			now = time.UnixMilli(recs[0].Timestamp)
		}
		e := &wal.Entry{Magic: magic, ReceivedAt: now.UnixNano(), Data: data}
		g := NewLogGroupBuilder(LogGroupLimits{})
		if _, err := c.Convert(g, e, now, nil); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		logs := cvtParse(t, g.Bytes("", "", nil)).Logs
		if len(logs) != len(recs) {
			t.Fatalf("%s: %d logs of %d records", file, len(logs), len(recs))
		}
		for i, r := range recs {
			sec, ns := cvtMsTime(r.Timestamp)
			if r.Timestamp < 0 {
				sec, ns = cvtTime(now.UnixNano())
			}
			w := cvtLog{Time: sec, TimeNs: ns, Contents: cvtWantContents(r, false, c.opt)}
			if !reflect.DeepEqual(logs[i], w) {
				t.Fatalf("%s: log %d:\n got %+v\nwant %+v", filepath.Base(file), i, logs[i], w)
			}
		}
	}
}

func cvtClone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func TestConvertTime(t *testing.T) {
	now := cvtNow
	nowMs := now.UnixMilli()
	c := NewConverter(ConvertOptions{})
	// f converts a batch of magic with one record of timestamp ts (ms;
	// mod may change the batch) received at received, and checks the
	// log's time.
	f := func(name string, magic int8, ts int64, received int64, mod func(*kmsg.RecordBatch), wantSec, wantNs uint32) {
		t.Helper()
		recs := []batchtest.Record{{Value: []byte("x"), Timestamp: ts}}
		var data []byte
		if magic == 2 {
			data = batchtest.RecordBatch(t, recs, batchtest.None, mod)
		} else {
			data = batchtest.MessageSet(t, magic, recs, batchtest.None, 0)
		}
		g := NewLogGroupBuilder(LogGroupLimits{})
		if _, err := c.Convert(g, &wal.Entry{Magic: magic, ReceivedAt: received, Data: data}, now, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		l := cvtParse(t, g.Bytes("", "", nil)).Logs[0]
		if l.Time != wantSec || l.TimeNs != wantNs {
			t.Errorf("%s: time %d.%09d, want %d.%09d", name, l.Time, l.TimeNs, wantSec, wantNs)
		}
	}
	recvSec, recvNs := cvtTime(cvtReceived)
	nowSec, nowNs := cvtTime(now.UnixNano())
	week, quarter := int64(7*24*3600*1000), int64(15*60*1000)

	f("ms precision", 2, 1_700_000_000_123, cvtReceived, nil, 1_700_000_000, 123_000_000)
	f("whole second", 2, 1_700_000_000_000, cvtReceived, nil, 1_700_000_000, 0)
	f("v1 ms precision", 1, 1_700_000_000_999, cvtReceived, nil, 1_700_000_000, 999_000_000)
	f("v0 has no timestamp", 0, 1_700_000_000_999, cvtReceived, nil, recvSec, recvNs)
	f("missing (-1)", 2, -1, cvtReceived, nil, recvSec, recvNs)
	f("v1 missing (-1)", 1, -1, cvtReceived, nil, recvSec, recvNs)
	f("negative", 2, -5000, cvtReceived, nil, recvSec, recvNs)
	f("zero (1970)", 2, 0, cvtReceived, nil, recvSec, recvNs)
	f("oldest accepted", 2, nowMs-week, cvtReceived, nil, uint32((nowMs-week)/1000), uint32((nowMs-week)%1000)*1e6)
	f("too old by 1 ms", 2, nowMs-week-1, cvtReceived, nil, recvSec, recvNs)
	f("latest accepted", 2, nowMs+quarter, cvtReceived, nil, uint32((nowMs+quarter)/1000), uint32((nowMs+quarter)%1000)*1e6)
	f("too far ahead by 1 ms", 2, nowMs+quarter+1, cvtReceived, nil, recvSec, recvNs)
	f("year 3000", 2, 32_503_680_000_000, cvtReceived, nil, recvSec, recvNs)
	f("huge", 2, 1<<62, cvtReceived, nil, recvSec, recvNs)
	f("received too long ago: now", 2, -1, now.Add(-8*24*time.Hour).UnixNano(), nil, nowSec, nowNs)
	f("received in the future: now", 2, -1, now.Add(time.Hour).UnixNano(), nil, nowSec, nowNs)
	f("received unset: now", 2, -1, 0, nil, nowSec, nowNs)
	logAppend := func(b *kmsg.RecordBatch) {
		b.Attributes |= 0x08 // LogAppendTime: the broker's MaxTimestamp
		b.MaxTimestamp = 1_700_000_050_500
	}
	f("LogAppendTime", 2, 1_700_000_000_123, cvtReceived, logAppend, 1_700_000_050, 500_000_000)

	// A v1 wrapper with LogAppendTime stamps every inner message.
	recs := []batchtest.Record{{Value: []byte("a"), Timestamp: 1_700_000_000_001}, {Value: []byte("b"), Timestamp: 1_700_000_000_002}}
	data := batchtest.MessageSet(t, 1, recs, batchtest.Gzip, 0x08)
	logs, _ := cvtConvert(t, c, &wal.Entry{Magic: 1, ReceivedAt: cvtReceived, Data: data}, LogGroupLimits{})
	for i, l := range logs {
		if l.Time != 1_700_000_000 || l.TimeNs != 2_000_000 {
			t.Errorf("v1 LogAppendTime: log %d at %d.%09d", i, l.Time, l.TimeNs)
		}
	}

	// The window follows the options.
	c2 := NewConverter(ConvertOptions{MaxAge: time.Hour, MaxFuture: time.Second})
	g := NewLogGroupBuilder(LogGroupLimits{})
	data = batchtest.RecordBatch(t, []batchtest.Record{{Value: []byte("old"), Timestamp: nowMs - 3_600_001}, {Value: []byte("ok"), Timestamp: nowMs + 1000}, {Value: []byte("ahead"), Timestamp: nowMs + 1001}}, batchtest.None, nil)
	if _, err := c2.Convert(g, &wal.Entry{Magic: 2, ReceivedAt: cvtReceived, Data: data}, now, nil); err != nil {
		t.Fatal(err)
	}
	got := cvtParse(t, g.Bytes("", "", nil)).Logs
	if got[0].Time != recvSec || got[1].Time != uint32((nowMs+1000)/1000) || got[2].Time != recvSec {
		t.Errorf("window of 1h/1s: %v", got)
	}
}

func TestConvertKeyHeaders(t *testing.T) {
	hdr := func(kv ...string) []kmsg.Header {
		var hs []kmsg.Header
		for i := 0; i+1 < len(kv); i += 2 {
			h := kmsg.Header{Key: kv[i]}
			if kv[i+1] != "<nil>" {
				h.Value = []byte(kv[i+1])
			}
			hs = append(hs, h)
		}
		return hs
	}
	// f converts one record and checks its fields (key, value pairs).
	f := func(name string, opt ConvertOptions, jsonMode bool, r batchtest.Record, want ...string) {
		t.Helper()
		r.Timestamp = cvtNow.UnixMilli()
		data := batchtest.RecordBatch(t, []batchtest.Record{r}, batchtest.None, nil)
		logs, _ := cvtConvert(t, NewConverter(opt), &wal.Entry{Magic: 2, ReceivedAt: cvtReceived, JSON: jsonMode, Data: data}, LogGroupLimits{})
		var w [][2]string
		for i := 0; i+1 < len(want); i += 2 {
			w = append(w, [2]string{want[i], want[i+1]})
		}
		if len(logs) != 1 || !reflect.DeepEqual(logs[0].Contents, w) {
			t.Errorf("%s: got %+v, want %q", name, logs, w)
		}
	}
	def := ConvertOptions{}
	keyed := ConvertOptions{KeyField: "key"}
	heads := ConvertOptions{HeadersAsFields: true}
	pre := ConvertOptions{HeadersAsFields: true, HeaderPrefix: "kafka.", KeyField: "kafka.key"}
	v := []byte("msg")
	f("key dropped by default", def, false, batchtest.Record{Key: []byte("k"), Value: v, Headers: hdr("h", "1")}, "content", "msg")
	f("null value", def, false, batchtest.Record{}, "content", "")
	f("key field", keyed, false, batchtest.Record{Key: []byte("k"), Value: v}, "content", "msg", "key", "k")
	f("null Key: no field", keyed, false, batchtest.Record{Value: v}, "content", "msg")
	f("empty key", keyed, false, batchtest.Record{Key: []byte{}, Value: v}, "content", "msg", "key", "")
	f("headers", heads, false, batchtest.Record{Value: v, Headers: hdr("a", "1", "b", "<nil>", "a", "2")}, "content", "msg", "a", "1", "b", "", "a", "2")
	f("data-parse-format is never a field", heads, false, batchtest.Record{Value: v, Headers: hdr("data-parse-format", "raw", "DATA-PARSE-FORMAT", "x")}, "content", "msg")
	f("empty header name skipped", heads, false, batchtest.Record{Value: v, Headers: hdr("", "x")}, "content", "msg")
	f("prefixed", pre, false, batchtest.Record{Key: []byte("k"), Value: v, Headers: hdr("", "x", "trace", "t1")}, "content", "msg", "kafka.key", "k", "kafka.", "x", "kafka.trace", "t1")
	obj := []byte(`{"b":"x","a":{"n": 1}}`)
	f("json header", def, false, batchtest.Record{Value: obj, Headers: hdr("data-parse-format", "json")}, "b", "x", "a", `{"n":1}`)
	f("json header any case", def, false, batchtest.Record{Value: obj, Headers: hdr("Data-Parse-Format", "Json")}, "b", "x", "a", `{"n":1}`)
	f("other format: no expansion", def, false, batchtest.Record{Value: obj, Headers: hdr("data-parse-format", "raw")}, "content", string(obj))
	f("json topic", def, true, batchtest.Record{Value: obj}, "b", "x", "a", `{"n":1}`)
	f("json topic, invalid JSON", def, true, batchtest.Record{Value: []byte(`{"b":`)}, "content", `{"b":`)
	f("json topic, null value", def, true, batchtest.Record{}, "content", "")
	f("json topic, array", def, true, batchtest.Record{Value: []byte(`[1]`)}, "content", "[1]")
	f("json fields, then key, then headers", pre, true, batchtest.Record{Key: []byte("k"), Value: obj, Headers: hdr("h", "v")}, "b", "x", "a", `{"n":1}`, "kafka.key", "k", "kafka.h", "v")
	f("json key named like the content field", keyed, true, batchtest.Record{Value: []byte(`{"content":"c","key":"j"}`), Key: []byte("k")}, "content", "c", "key", "j", "key", "k")
}

// cvtSplitRecords returns n records of varied sizes whose values name them.
func cvtSplitRecords(n int) []batchtest.Record {
	recs := make([]batchtest.Record, n)
	base := cvtNow.Add(-time.Minute).UnixMilli()
	for i := range recs {
		recs[i] = batchtest.Record{Value: []byte(fmt.Sprintf("rec-%04d-%s", i, strings.Repeat("p", i*37%900))), Timestamp: base + int64(i)}
	}
	return recs
}

func TestConvertSplit(t *testing.T) {
	recs := cvtSplitRecords(300)
	check := func(name string, lim LogGroupLimits, jsonMode bool) {
		t.Helper()
		data := batchtest.RecordBatch(t, recs, batchtest.Gzip, nil)
		c := NewConverter(ConvertOptions{})
		logs, col := cvtConvert(t, c, &wal.Entry{Magic: 2, ReceivedAt: cvtReceived, JSON: jsonMode, Data: data}, lim)
		if len(col.groups) < 2 {
			t.Fatalf("%s: %d flushes", name, len(col.groups))
		}
		for i, grp := range col.groups {
			// One log larger than MaxBytes goes alone.
			if lim.MaxLogs > 0 && len(grp.Logs) > lim.MaxLogs || lim.MaxBytes > 0 && col.sizes[i] > lim.MaxBytes && len(grp.Logs) > 1 {
				t.Fatalf("%s: group %d has %d logs, %d bytes", name, i, len(grp.Logs), col.sizes[i])
			}
		}
		if len(logs) != len(recs) {
			t.Fatalf("%s: %d logs of %d records", name, len(logs), len(recs))
		}
		for i, l := range logs {
			if l.Contents[0][1] != string(recs[i].Value) {
				t.Fatalf("%s: log %d is %.12q", name, i, l.Contents[0][1])
			}
		}
	}
	check("bytes", LogGroupLimits{MaxBytes: 4096}, false)
	check("logs", LogGroupLimits{MaxLogs: 7}, false)
	check("both", LogGroupLimits{MaxBytes: 10_000, MaxLogs: 20}, true)
	check("records larger than the group", LogGroupLimits{MaxBytes: 100}, false)

	// Entries share groups: a group holds the end of one entry and the
	// start of the next, and Convert starts from what g holds.
	c := NewConverter(ConvertOptions{})
	g := NewLogGroupBuilder(LogGroupLimits{MaxBytes: 3000})
	col := &cvtCollect{tb: t}
	var want []string
	total := 0
	for e := range 5 {
		part := cvtSplitRecords(40)
		for i := range part {
			part[i].Value = fmt.Appendf(nil, "entry-%d-%s", e, part[i].Value)
			want = append(want, string(part[i].Value))
		}
		n, err := c.Convert(g, &wal.Entry{Magic: 2, ReceivedAt: cvtReceived, Data: batchtest.RecordBatch(t, part, batchtest.Snappy, nil)}, cvtNow, col.flush)
		if err != nil || n != len(part) {
			t.Fatalf("entry %d: %d logs, %v", e, n, err)
		}
		total += n
	}
	var got []string
	for _, l := range col.logs(g) {
		got = append(got, l.Contents[0][1])
	}
	if !reflect.DeepEqual(got, want) || total != len(want) {
		t.Fatalf("across entries: %d logs, want %d, in order: %v", len(got), len(want), reflect.DeepEqual(got, want))
	}
}

func TestConvertUndecodable(t *testing.T) {
	recs := cvtSplitRecords(5)
	good := batchtest.RecordBatch(t, recs, batchtest.None, nil)
	badCRC := append([]byte{}, good...)
	badCRC[len(badCRC)-1] ^= 1
	missing := batchtest.RecordBatch(t, recs[:4], batchtest.None, func(b *kmsg.RecordBatch) { b.NumRecords = 5 })
	huge := batchtest.RecordBatch(t, []batchtest.Record{{Value: make([]byte, 1<<20)}}, batchtest.Gzip, nil)
	prior := cvtLog{Time: 1, TimeNs: 2, Contents: [][2]string{{"content", "from an earlier entry"}}}

	// f converts data into a group already holding one log, and checks
	// the error, the count, the flushes and what g holds after.
	f := func(name string, e *wal.Entry, opt ConvertOptions, lim LogGroupLimits, wantN, wantFlushes, wantLeft int) {
		t.Helper()
		g := NewLogGroupBuilder(lim)
		cvtAppend(g, prior)
		col := &cvtCollect{tb: t}
		n, err := NewConverter(opt).Convert(g, e, cvtNow, col.flush)
		if !errors.Is(err, ErrUndecodable) {
			t.Fatalf("%s: error %v does not wrap ErrUndecodable", name, err)
		}
		left := cvtParse(t, g.Bytes("", "", nil)).Logs
		if n != wantN || len(col.groups) != wantFlushes || len(left) != wantLeft {
			t.Fatalf("%s: n %d, %d flushes, %d logs left; want %d, %d, %d (%v)", name, n, len(col.groups), len(left), wantN, wantFlushes, wantLeft, err)
		}
		if wantLeft == 1 && !reflect.DeepEqual(left[0], prior) {
			t.Fatalf("%s: g holds %v", name, left)
		}
	}
	e := func(magic int8, data []byte) *wal.Entry {
		return &wal.Entry{Magic: magic, ReceivedAt: cvtReceived, Data: data}
	}
	f("bad CRC", e(2, badCRC), ConvertOptions{}, LogGroupLimits{}, 0, 0, 1)
	f("unknown magic", e(3, good), ConvertOptions{}, LogGroupLimits{}, 0, 0, 1)
	f("magic mismatch", e(1, good), ConvertOptions{}, LogGroupLimits{}, 0, 0, 1)
	f("empty", e(2, nil), ConvertOptions{}, LogGroupLimits{}, 0, 0, 1)
	f("truncated", e(2, good[:len(good)-3]), ConvertOptions{}, LogGroupLimits{}, 0, 0, 1)
	f("too large decompressed", e(2, huge), ConvertOptions{MaxDecompressedBytes: 1 << 19}, LogGroupLimits{}, 0, 0, 1)
	// Four records decode before the fifth is missing: they are removed
	// again, and g holds what it held.
	f("missing record", e(2, missing), ConvertOptions{}, LogGroupLimits{}, 0, 0, 1)
	// With two logs a group: {earlier, record 0} and {records 1, 2} were
	// flushed (n counts the three records sent), record 3 followed and was
	// removed again when the fifth turned out missing.
	f("missing record after flushes", e(2, missing), ConvertOptions{}, LogGroupLimits{MaxLogs: 2}, 3, 2, 0)
}

func TestConvertFlushError(t *testing.T) {
	boom := errors.New("boom")
	g := NewLogGroupBuilder(LogGroupLimits{MaxLogs: 3})
	cvtAppend(g, cvtLog{Time: 1, Contents: [][2]string{{"content", "earlier"}}})
	col := &cvtCollect{tb: t, fail: boom}
	data := batchtest.RecordBatch(t, cvtSplitRecords(10), batchtest.None, nil)
	n, err := NewConverter(ConvertOptions{}).Convert(g, &wal.Entry{Magic: 2, ReceivedAt: cvtReceived, Data: data}, cvtNow, col.flush)
	if err != boom || errors.Is(err, ErrUndecodable) || n != 0 {
		t.Fatalf("n %d, error %v", n, err)
	}
	if logs := cvtParse(t, g.Bytes("", "", nil)).Logs; len(logs) != 1 || logs[0].Contents[0][1] != "earlier" {
		t.Fatalf("g holds %v", logs)
	}
	// No flush function: an error, not a panic, once g is full.
	n, err = NewConverter(ConvertOptions{}).Convert(g, &wal.Entry{Magic: 2, ReceivedAt: cvtReceived, Data: data}, cvtNow, nil)
	if err == nil || errors.Is(err, ErrUndecodable) || n != 0 || g.Logs() != 1 {
		t.Fatalf("nil flush: n %d, %d logs in g, error %v", n, g.Logs(), err)
	}
}

// A Converter reused on the same kind of entries allocates nothing.
func TestConvertAllocs(t *testing.T) {
	if cvtRaceEnabled {
		t.Skip("the race detector allocates")
	}
	text := batchtest.RecordBatch(t, cvtSampleRecords(50), batchtest.None, nil)
	js := batchtest.RecordBatch(t, cvtBeatsRecords(50), batchtest.None, nil)
	c := NewConverter(ConvertOptions{KeyField: "key", HeadersAsFields: true})
	g := NewLogGroupBuilder(LogGroupLimits{MaxLogs: 20})
	flush := func(g *LogGroupBuilder) error { _ = g.Bytes("t", "s", nil); return nil }
	for _, tc := range []struct {
		name string
		e    *wal.Entry
	}{
		{"text", &wal.Entry{Magic: 2, ReceivedAt: cvtReceived, Data: text}},
		{"json", &wal.Entry{Magic: 2, ReceivedAt: cvtReceived, JSON: true, Data: js}},
	} {
		allocs := testing.AllocsPerRun(50, func() {
			g.Reset()
			if _, err := c.Convert(g, tc.e, cvtNow, flush); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Convert", tc.name, allocs)
		}
	}
}
