package shardwriter

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// atEntry returns an entry of n records from producer addr with client.id
// id.
func atEntry(t testing.TB, addr, id string, n int) *wal.Entry {
	recs := make([]batchtest.Record, n)
	for i := range recs {
		recs[i] = batchtest.Record{Value: []byte(addr + "/" + id), Timestamp: time.Now().UnixMilli()}
	}
	return &wal.Entry{Magic: 2, Records: int32(n), ReceivedAt: time.Now().UnixNano(),
		Producer: addr, ClientID: id, Data: batchtest.RecordBatch(t, recs, batchtest.None, nil)}
}

func TestAttribution(t *testing.T) {
	host, _ := os.Hostname()
	e := &wal.Entry{Producer: "127.0.0.2:40000", ClientID: "app-1", SASLUser: "alice", ClientSoftware: "franz-go/1.18.0"}
	f := func(source string, tags []string, e *wal.Entry, wantSource string, wantTags ...string) {
		t.Helper()
		a, err := newAttributor(source, tags)
		if err != nil {
			t.Fatal(err)
		}
		got := a.of(e)
		want := attribution{source: wantSource}
		copy(want.tags[:], wantTags)
		if got != want {
			t.Fatalf("source %q tags %q, entry %+v: %+v, want %+v", source, tags, e, got, want)
		}
	}
	// Default: the producer's IP, and its client.id.
	f("", nil, e, "127.0.0.2", "app-1")
	f("client_address", nil, e, "127.0.0.2", "app-1")
	f("client_address", nil, &wal.Entry{Producer: "[::1]:9092"}, "::1")
	f("client_address", nil, &wal.Entry{Producer: "unix-peer"}, "unix-peer")
	f("client_address", nil, &wal.Entry{}, host) // no address: the relay's
	f("relay_host", nil, e, host, "app-1")
	f("edge-relays", nil, e, "edge-relays", "app-1")
	f("", []string{}, e, "127.0.0.2")
	f("", []string{"client_software", "sasl_user"}, e, "127.0.0.2", "", "alice", "franz-go/1.18.0")
	f("", []string{"client_id", "sasl_user", "client_software"}, e, "127.0.0.2", "app-1", "alice", "franz-go/1.18.0")
	f("", []string{"sasl_user"}, &wal.Entry{Producer: "10.0.0.1:1"}, "10.0.0.1") // unknown: no tag
	f("", nil, &wal.Entry{ClientID: "bad\xffid"}, host, "bad\uFFFDid")
	long := strings.Repeat("x", atMaxTagValue+10)
	a, _ := newAttributor("", nil)
	if got := a.of(&wal.Entry{ClientID: long}).tags[0]; len(got) != atMaxTagValue {
		t.Fatalf("a client.id of %d bytes is a tag of %d", len(long), len(got))
	}
	if got := a.of(&wal.Entry{ClientID: strings.Repeat("x", atMaxTagValue-1) + "é"}).tags[0]; !utf8.ValidString(got) {
		t.Fatalf("a client.id cut inside a rune is not UTF-8: %q", got[len(got)-4:])
	}

	bad := func(source string, tags []string) {
		t.Helper()
		if _, err := newAttributor(source, tags); err == nil {
			t.Fatalf("source %q tags %q accepted", source, tags)
		}
	}
	bad(strings.Repeat("s", 129), nil)
	bad("bad\xff", nil)
	bad("", []string{"client_ip"})
}

// Logs of different attributions never share a LogGroup; consecutive
// entries of one attribution do, also across a flush in the middle of an
// entry; a LogGroup carries its logs' source and tags.
func TestConvertGroupsByAttribution(t *testing.T) {
	a, err := newAttributor("", []string{"client_id"})
	if err != nil {
		t.Fatal(err)
	}
	c := NewConverter(ConvertOptions{attrib: a})
	g := NewLogGroupBuilder(LogGroupLimits{MaxLogs: 5})
	var groups []cvtGroup
	flush := func(g *LogGroupBuilder) error {
		groups = append(groups, cvtParse(t, g.Bytes("", "relay-default", nil)))
		return nil
	}
	entries := []*wal.Entry{
		atEntry(t, "127.0.0.2:1000", "a", 2),
		atEntry(t, "127.0.0.2:1001", "a", 2), // another port, same IP: same group
		atEntry(t, "127.0.0.3:1000", "a", 1),
		atEntry(t, "127.0.0.3:1000", "b", 3),
		atEntry(t, "127.0.0.3:1000", "b", 4), // 3+4 > 5: flushed in the middle
		atEntry(t, "127.0.0.2:1000", "a", 1),
	}
	for _, e := range entries {
		if _, err := c.Convert(g, e, time.Now(), flush); err != nil {
			t.Fatal(err)
		}
	}
	if err := flush(g); err != nil {
		t.Fatal(err)
	}
	type want struct {
		source, clientID string
		logs             int
	}
	wants := []want{{"127.0.0.2", "a", 4}, {"127.0.0.3", "a", 1}, {"127.0.0.3", "b", 5}, {"127.0.0.3", "b", 2}, {"127.0.0.2", "a", 1}}
	if len(groups) != len(wants) {
		t.Fatalf("%d LogGroups, want %d: %+v", len(groups), len(wants), groups)
	}
	for i, w := range wants {
		g := groups[i]
		if g.Source != w.source || len(g.Tags) != 1 || g.Tags[0] != [2]string{"client_id", w.clientID} || len(g.Logs) != w.logs {
			t.Fatalf("group %d: source %q tags %v, %d logs; want %+v", i, g.Source, g.Tags, len(g.Logs), w)
		}
		for _, l := range g.Logs {
			// Each log's content names its producer: it must be the group's.
			if from := l.Contents[0][1]; !strings.HasPrefix(from, w.source+":") || !strings.HasSuffix(from, "/"+w.clientID) {
				t.Fatalf("group %d (%s, %s) holds a log of %s", i, w.source, w.clientID, from)
			}
		}
	}
}

// Without a flush function, an entry of another attribution cannot join a
// LogGroup: Convert fails and leaves the group as it was.
func TestConvertAttributionNoFlush(t *testing.T) {
	a, _ := newAttributor("", nil)
	c := NewConverter(ConvertOptions{attrib: a})
	g := NewLogGroupBuilder(LogGroupLimits{})
	if _, err := c.Convert(g, atEntry(t, "127.0.0.2:1", "a", 2), time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	size := g.Size()
	if _, err := c.Convert(g, atEntry(t, "127.0.0.2:1", "b", 2), time.Now(), nil); !errors.Is(err, errNoFlush) {
		t.Fatalf("entry of another client.id without flush: %v", err)
	}
	if g.Logs() != 2 || g.Size() != size {
		t.Fatalf("group changed: %d logs, %d bytes", g.Logs(), g.Size())
	}
	if got := cvtParse(t, g.Bytes("", "", nil)); got.Source != "127.0.0.2" || len(got.Tags) != 1 || got.Tags[0] != [2]string{"client_id", "a"} {
		t.Fatalf("group attribution changed: %+v", got)
	}
}
