package shardwriter

import (
	"bytes"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// svtValid reports why SLS (data model page, see sanitize.go) would refuse
// a field, under the strict reading or the lenient one; "" if it takes it.
func svtValid(key, val []byte, strict bool) string {
	switch {
	case len(key) == 0:
		return "empty key"
	case len(key) > svMaxKeyBytes:
		return "key over 128 bytes"
	case svReserved(key):
		return "reserved key"
	case !utf8.Valid(key):
		return "key not UTF-8"
	case !utf8.Valid(val):
		return "value not UTF-8"
	case len(val) > svMaxValueBytes:
		return "value over 1 MiB"
	}
	if strict {
		if key[0] >= '0' && key[0] <= '9' {
			return "key starts with a digit"
		}
		for _, b := range key {
			if !svStrictByte(b) {
				return "key has a character other than letter, digit, underscore"
			}
		}
	}
	return ""
}

func TestSanitizeField(t *testing.T) {
	long := strings.Repeat("k", 200)
	bigVal := strings.Repeat("v", svMaxValueBytes-9) + "é€" + strings.Repeat("w", 10) // the cut falls inside é
	f := func(strict bool, key, val, wantKey, wantVal string, wantKinds ...svKind) {
		t.Helper()
		c := NewConverter(ConvertOptions{StrictKeys: strict})
		fs := []cvField{{[]byte(key), []byte(val)}}
		c.sanitize(fs, 1_700_000_000, lgDefaultMaxBytes)
		if string(fs[0].key) != wantKey || string(fs[0].val) != wantVal {
			t.Errorf("strict=%v %.40q=%.40q: got %.40q=%.40q, want %.40q=%.40q", strict, key, val, fs[0].key, fs[0].val, wantKey, wantVal)
		}
		if why := svtValid(fs[0].key, fs[0].val, strict); why != "" {
			t.Errorf("strict=%v %.40q: result still refused: %s", strict, key, why)
		}
		var want [svKinds]int
		for _, k := range wantKinds {
			want[k]++
		}
		if c.fixes != want {
			t.Errorf("strict=%v %.40q: fixes %v, want %v", strict, key, c.fixes, want)
		}
	}
	for _, strict := range []bool{false, true} {
		f(strict, "content", "hello", "content", "hello")
		f(strict, "", "v", "_", "v", svEmptyKey)
		f(strict, "__time__", "1", "___time__", "1", svReservedKey)
		f(strict, "__source__", "x", "___source__", "x", svReservedKey)
		f(strict, "__topic__", "x", "___topic__", "x", svReservedKey)
		f(strict, "__partition_time__", "x", "___partition_time__", "x", svReservedKey)
		f(strict, "_extract_others_", "x", "__extract_others_", "x", svReservedKey)
		f(strict, "__extract_others__", "x", "___extract_others__", "x", svReservedKey)
		f(strict, "__time", "x", "__time", "x") // not reserved
		f(strict, long, "x", "_"+long[:127], "x", svLongKey)
		f(strict, "msg", "a\xffb\xc3", "msg", "a\uFFFDb\uFFFD", svValueEncoding)
		f(strict, "msg", bigVal, "msg", bigVal[:svMaxValueBytes-9]+svCutMarker, svLongValue)
		f(strict, "k\xff", "v", "_k_", "v", svKeyEncoding)
	}
	// Lenient: keys SLS's own Kafka endpoint is seen storing stay.
	f(false, "@timestamp", "t", "@timestamp", "t")
	f(false, "log.file.path", "p", "log.file.path", "p")
	f(false, "1st", "x", "1st", "x")
	f(false, "名前", "x", "名前", "x")
	// Strict: the documented syntax.
	f(true, "@timestamp", "t", "__timestamp", "t", svKeySyntax)
	f(true, "log.file.path", "p", "_log_file_path", "p", svKeySyntax)
	f(true, "1st", "x", "_1st", "x", svKeySyntax)
	f(true, "名前", "x", "___", "x", svKeySyntax)
	f(true, "Valid_Key_9", "x", "Valid_Key_9", "x")
	// A long multi-byte key is cut at a character boundary.
	f(false, strings.Repeat("é", 100), "x", "_"+strings.Repeat("é", 63), "x", svLongKey)
}

// A log too large for a LogGroup has its largest values cut until it fits.
func TestSanitizeLongLog(t *testing.T) {
	c := NewConverter(ConvertOptions{})
	big := bytes.Repeat([]byte("x"), 1000)
	fs := []cvField{{[]byte("a"), big}, {[]byte("b"), big[:600]}, {[]byte("c"), []byte("small")}}
	const limit = 1200
	c.sanitize(fs, 1_700_000_000, limit)
	if n := lgLogSize(lgLogBodySize(1_700_000_000, fs)); n > limit {
		t.Fatalf("log is %d bytes, limit %d", n, limit)
	}
	if string(fs[2].val) != "small" || !bytes.HasSuffix(fs[0].val, []byte(svCutMarker)) {
		t.Fatalf("cut the wrong values: %q %q %q", fs[0].val, fs[1].val, fs[2].val)
	}
	if c.fixes[svLongLog] != 1 {
		t.Fatalf("fixes %v", c.fixes)
	}
}

// Through Convert: a batch mixing valid logs and logs SLS would refuse gives
// a LogGroup where every log is valid and the valid ones are untouched.
func TestConvertSanitizes(t *testing.T) {
	base := cvtNow.Add(-time.Minute).UnixMilli()
	recs := []batchtest.Record{
		{Value: []byte("fine"), Timestamp: base},
		{Value: []byte("bad \xff utf8"), Timestamp: base},
		{Value: []byte(`{"__time__":"1","":"e","ok":"\u00e9"}`), Timestamp: base},
	}
	data := batchtest.RecordBatch(t, recs, batchtest.Gzip, nil)
	logs, _ := cvtConvert(t, NewConverter(ConvertOptions{}), &wal.Entry{Magic: 2, ReceivedAt: cvtReceived, JSON: true, Data: data}, LogGroupLimits{})
	want := [][][2]string{
		{{"content", "fine"}},
		{{"content", "bad \uFFFD utf8"}},
		{{"___time__", "1"}, {"ok", "é"}}, // the empty key is skipped by JSON expansion
	}
	if len(logs) != len(want) {
		t.Fatalf("%d logs", len(logs))
	}
	for i, l := range logs {
		if len(l.Contents) != len(want[i]) {
			t.Fatalf("log %d: %q, want %q", i, l.Contents, want[i])
		}
		for j := range l.Contents {
			if l.Contents[j] != want[i][j] {
				t.Errorf("log %d: %q, want %q", i, l.Contents, want[i])
			}
		}
	}
}

// FuzzSanitize checks that whatever a field holds, the result is valid
// under the reading in use, and a valid field is left as it is.
func FuzzSanitize(f *testing.F) {
	for _, s := range [][2]string{{"content", "x"}, {"", ""}, {"__time__", "\xff"}, {"@timestamp", "é"}, {"1a.b", "\xc3"}, {strings.Repeat("é", 70), "v"}} {
		f.Add([]byte(s[0]), []byte(s[1]), false)
		f.Add([]byte(s[0]), []byte(s[1]), true)
	}
	f.Fuzz(func(t *testing.T, key, val []byte, strict bool) {
		c := NewConverter(ConvertOptions{StrictKeys: strict})
		fs := []cvField{{key, val}}
		wasValid := svtValid(key, val, strict) == ""
		c.sanitize(fs, 1_700_000_000, lgDefaultMaxBytes)
		if why := svtValid(fs[0].key, fs[0].val, strict); why != "" {
			t.Fatalf("%q=%q gave %q=%q: %s", key, val, fs[0].key, fs[0].val, why)
		}
		if wasValid && (!bytes.Equal(fs[0].key, key) || !bytes.Equal(fs[0].val, val)) {
			t.Fatalf("valid %q=%q changed into %q=%q", key, val, fs[0].key, fs[0].val)
		}
	})
}

// Through the writer, the SDK and the stand-in: a record SLS would refuse
// (invalid UTF-8, a value over 1 MiB) is stored fixed, next to the others
// untouched, in one PutLogs. Once the stand-in validates logs as SLS does,
// this also checks that the fixed logs pass its checks.
func TestWriterSendsFixedLogs(t *testing.T) {
	e := wtStart(t, nil)
	recs := wtRecords("ok", 3)
	recs[1].Value = []byte("bad \xff utf8")
	recs[2].Value = bytes.Repeat([]byte("x"), svMaxValueBytes+10)
	e.append(recs)
	e.svc.Start()
	e.waitFor("3 logs", func() bool { return len(e.stored()) == 3 })
	got := e.stored()
	sort.Strings(got)
	want := []string{"bad \uFFFD utf8", "ok-000", strings.Repeat("x", svMaxValueBytes-len(svCutMarker)) + svCutMarker}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("stored %.30q", got)
	}
	if n := e.hook.puts.Load(); n != 1 {
		t.Fatalf("%d PutLogs, want 1", n)
	}
}
