package shardwriter

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
)

// cvtSDKGroup builds the sls.LogGroup the SDK way, for comparison.
func cvtSDKGroup(logs []cvtLog, topic, source string, tags []LogTag) *sls.LogGroup {
	lg := &sls.LogGroup{}
	for _, l := range logs {
		sl := &sls.Log{Time: proto.Uint32(l.Time), TimeNs: proto.Uint32(l.TimeNs)}
		for _, c := range l.Contents {
			sl.Contents = append(sl.Contents, &sls.LogContent{Key: proto.String(c[0]), Value: proto.String(c[1])})
		}
		lg.Logs = append(lg.Logs, sl)
	}
	if topic != "" {
		lg.Topic = proto.String(topic)
	}
	if source != "" {
		lg.Source = proto.String(source)
	}
	for _, t := range tags {
		lg.LogTags = append(lg.LogTags, &sls.LogTag{Key: proto.String(t.Key), Value: proto.String(t.Value)})
	}
	return lg
}

func cvtAppend(g *LogGroupBuilder, l cvtLog) {
	var fs []cvField
	for _, c := range l.Contents {
		fs = append(fs, cvField{[]byte(c[0]), []byte(c[1])})
	}
	g.appendLog(lgLogBodySize(l.Time, fs), l.Time, l.TimeNs, fs, logRef{})
}

func TestLogGroupBuilderMatchesSDK(t *testing.T) {
	big := strings.Repeat("x", 200_000) // three-byte lengths
	logs := []cvtLog{
		{Time: 1_700_000_000, TimeNs: 123_000_000, Contents: [][2]string{{"content", "hello"}}},
		{Time: 0, TimeNs: 0, Contents: [][2]string{{"content", ""}}},
		{Time: 1<<32 - 1, TimeNs: 999_999_999, Contents: [][2]string{{"a", "1"}, {"b", strings.Repeat("y", 300)}, {"a", "dup"}}},
		{Time: 127, TimeNs: 1, Contents: [][2]string{{"k", big}, {"ünï", "\x00\xff"}}},
		{Time: 128, TimeNs: 2}, // no contents
	}
	f := func(name, topic, source string, tags []LogTag) {
		t.Helper()
		g := NewLogGroupBuilder(LogGroupLimits{})
		for _, l := range logs {
			cvtAppend(g, l)
		}
		got := g.Bytes(topic, source, tags)
		want, err := proto.Marshal(cvtSDKGroup(logs, topic, source, tags))
		if err != nil {
			t.Fatal(err)
		}
		// The SDK writes the fields in number order, as the builder does:
		// the encodings are the same bytes.
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: encoding differs from the SDK's (%d vs %d bytes)", name, len(got), len(want))
		}
		back := cvtParse(t, got)
		if !reflect.DeepEqual(back.Logs, logs) || back.Topic != topic || back.Source != source {
			t.Fatalf("%s: round trip: got %.200v", name, back)
		}
		if g.Logs() != len(logs) || g.Size() != len(g.Bytes("", "", nil)) {
			t.Fatalf("%s: Logs %d Size %d of %d bytes", name, g.Logs(), g.Size(), len(got))
		}
	}
	f("bare", "", "", nil)
	f("topic", "t", "", nil)
	f("all", "topic", "10.0.0.1", []LogTag{{"client", "filebeat"}, {"", ""}, {"k", strings.Repeat("v", 130)}})
}

func TestLogGroupBuilderReuse(t *testing.T) {
	g := NewLogGroupBuilder(LogGroupLimits{})
	a := cvtLog{Time: 5, TimeNs: 6, Contents: [][2]string{{"content", "first"}}}
	b := cvtLog{Time: 7, TimeNs: 8, Contents: [][2]string{{"content", "second"}}}
	cvtAppend(g, a)
	// Bytes twice with other metadata, then more logs: the metadata is
	// written after the logs and overwritten by the next log.
	if got := cvtParse(t, g.Bytes("t1", "s1", []LogTag{{"x", "y"}})); got.Topic != "t1" || len(got.Logs) != 1 || len(got.Tags) != 1 {
		t.Fatalf("first Bytes: %+v", got)
	}
	if got := cvtParse(t, g.Bytes("", "", nil)); got.Topic != "" || got.Source != "" || got.Tags != nil {
		t.Fatalf("second Bytes: %+v", got)
	}
	cvtAppend(g, b)
	if got := cvtParse(t, g.Bytes("t", "", nil)); !reflect.DeepEqual(got.Logs, []cvtLog{a, b}) {
		t.Fatalf("after append: %+v", got)
	}
	g.Reset()
	if g.Logs() != 0 || g.Size() != 0 || len(g.Bytes("", "", nil)) != 0 {
		t.Fatalf("Reset left %d logs, %d bytes", g.Logs(), g.Size())
	}
	cvtAppend(g, b)
	if got := cvtParse(t, g.Bytes("", "", nil)); !reflect.DeepEqual(got.Logs, []cvtLog{b}) {
		t.Fatalf("after Reset: %+v", got)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		g.Reset()
		cvtAppendNoAlloc(g)
		_ = g.Bytes("topic", "source", nil)
	}); allocs != 0 {
		t.Fatalf("%v allocations per reused group", allocs)
	}
}

var cvtFields = []cvField{{[]byte("content"), []byte("a log line")}, {[]byte("k"), []byte("v")}}

func cvtAppendNoAlloc(g *LogGroupBuilder) {
	for range 10 {
		g.appendLog(lgLogBodySize(1, cvtFields), 1, 2, cvtFields, logRef{})
	}
}

func TestLogGroupBuilderLimits(t *testing.T) {
	one := lgLogSize(lgLogBodySize(1, cvtFields))
	f := func(name string, l LogGroupLimits, fitting int) {
		t.Helper()
		g := NewLogGroupBuilder(l)
		n := 0
		for g.fits(one) {
			if g.Full() {
				t.Fatalf("%s: Full with room for a log", name)
			}
			g.appendLog(lgLogBodySize(1, cvtFields), 1, 2, cvtFields, logRef{})
			if n++; n > 10000 {
				t.Fatalf("%s: never full", name)
			}
		}
		if n != fitting {
			t.Fatalf("%s: %d logs fit, want %d", name, n, fitting)
		}
		if g.Size() > max(g.lim.MaxBytes, one) || g.Logs() > g.lim.MaxLogs {
			t.Fatalf("%s: past the limits: %d bytes, %d logs", name, g.Size(), g.Logs())
		}
	}
	f("logs", LogGroupLimits{MaxLogs: 3}, 3)
	f("bytes exact", LogGroupLimits{MaxBytes: 4 * one}, 4)
	f("bytes", LogGroupLimits{MaxBytes: 4*one + one - 1}, 4)
	f("one log larger than the limit goes alone", LogGroupLimits{MaxBytes: one / 2}, 1)
	g := NewLogGroupBuilder(LogGroupLimits{MaxLogs: 2})
	cvtAppendNoAlloc(g)
	if !g.Full() {
		t.Fatal("not Full past MaxLogs")
	}
	g = NewLogGroupBuilder(LogGroupLimits{})
	if g.lim.MaxBytes != 4<<20 || g.lim.MaxLogs != 4096 {
		t.Fatalf("defaults: %+v", g.lim)
	}
}

func TestLogGroupVarintLen(t *testing.T) {
	for _, x := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<32 - 1, 1<<63 + 5} {
		if got, want := lgVarintLen(x), proto.SizeVarint(x); got != want {
			t.Errorf("lgVarintLen(%d) = %d, want %d", x, got, want)
		}
	}
}
