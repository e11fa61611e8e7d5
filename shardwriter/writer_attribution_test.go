package shardwriter

import (
	"fmt"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/wal"
)

// atProducer is one producer of the writer tests: its address, client.id,
// SASL user and software, and the __source__ and tags its logs must carry.
type atProducer struct {
	addr, clientID, user, software string
	source                         string
	tags                           []slsfake.KV
}

// atAppend stores a batch of n logs of p in partition 0 of wtLogstore, each
// log's content naming p and its index.
func (e *wtEnv) atAppend(p *atProducer, batch, n int) {
	e.t.Helper()
	recs := wtRecords(fmt.Sprintf("%s|%d", p.clientID, batch), n)
	en := wtEntry(e.t, recs)
	en.Producer, en.ClientID, en.SASLUser, en.ClientSoftware = p.addr, p.clientID, p.user, p.software
	errc := make(chan error, 1)
	e.w.Append(wal.StreamKey{Project: wtProject, Logstore: wtLogstore}, en, true, func(_ int64, err error) { errc <- err })
	if err := <-errc; err != nil {
		e.t.Fatal(err)
	}
}

// atCheck waits for want logs and checks that each carries the source and
// tags of the producer its content names, as the stand-in stores them.
func (e *wtEnv) atCheck(producers []*atProducer, want int) {
	e.t.Helper()
	e.waitFor(fmt.Sprint(want, " logs"), func() bool { return len(e.stored()) >= want })
	byID := map[string]*atProducer{}
	for _, p := range producers {
		byID[p.clientID] = p
	}
	logs := e.s.Logs(wtProject, wtLogstore)
	if len(logs) != want {
		e.t.Fatalf("the stand-in holds %d logs, want %d", len(logs), want)
	}
	for _, l := range logs {
		var content string
		for _, c := range l.Contents {
			if c.Key == "content" {
				content = c.Value
			}
		}
		var id string
		for i := range content {
			if content[i] == '|' {
				id = content[:i]
				break
			}
		}
		p := byID[id]
		if p == nil {
			e.t.Fatalf("log %q names no producer", content)
		}
		if l.Source != p.source || fmt.Sprint(l.Tags) != fmt.Sprint(p.tags) {
			e.t.Fatalf("log %q of %s is stored with __source__ %q tags %v; want %q %v", content, p.addr, l.Source, l.Tags, p.source, p.tags)
		}
	}
}

// Logs of producers interleaved in one stream are each stored with their
// own producer's __source__ (its IP) and __tag__:client_id, through the
// real SDK, WAL and stand-in; consecutive batches of one producer share a
// PutLogs.
func TestWriterAttribution(t *testing.T) {
	e := wtStart(t, func(o *Options) { o.Linger = 200 * time.Millisecond })
	ps := []*atProducer{
		{addr: "127.0.0.2:40001", clientID: "app-a", source: "127.0.0.2", tags: []slsfake.KV{{Key: "client_id", Value: "app-a"}}},
		{addr: "127.0.0.3:40002", clientID: "app-b", source: "127.0.0.3", tags: []slsfake.KV{{Key: "client_id", Value: "app-b"}}},
		{addr: "127.0.0.3:40003", clientID: "app-c", source: "127.0.0.3", tags: []slsfake.KV{{Key: "client_id", Value: "app-c"}}},
	}
	// Runs of one producer: a a b a c c b = 5 runs, appended before the
	// writer starts so that it reads them in one go.
	order := []int{0, 0, 1, 0, 2, 2, 1}
	for i, p := range order {
		e.atAppend(ps[p], i, 3)
	}
	e.svc.Start()
	e.atCheck(ps, 3*len(order))
	if puts := e.hook.puts.Load(); puts != 5 {
		t.Errorf("%d PutLogs for 5 runs of one attribution", puts)
	}
}

// With every tag configured and a fixed source, the SASL user and client
// software stored in the WAL entry reach SLS as tags; a producer without
// them has only the tags it has.
func TestWriterAttributionAllTags(t *testing.T) {
	e := wtStart(t, func(o *Options) {
		o.Source = "edge-relays"
		o.Tags = []string{TagClientSoftware, TagSASLUser, TagClientID}
	})
	ps := []*atProducer{
		{addr: "127.0.0.2:1", clientID: "app-a", user: "alice", software: "franz-go/1.18.0", source: "edge-relays",
			tags: []slsfake.KV{{Key: "client_id", Value: "app-a"}, {Key: "sasl_user", Value: "alice"}, {Key: "client_software", Value: "franz-go/1.18.0"}}},
		{addr: "127.0.0.3:1", clientID: "app-b", source: "edge-relays",
			tags: []slsfake.KV{{Key: "client_id", Value: "app-b"}}},
	}
	e.svc.Start()
	e.atAppend(ps[0], 0, 2)
	e.atAppend(ps[1], 1, 2)
	e.atCheck(ps, 4)
}

// The first batch of an AccessKey to a Logstore is sent by the write proof,
// not the writer: it too carries its producer's attribution.
func TestWriteProofAttribution(t *testing.T) {
	e := wpService(t, wpStandIn(t), t.TempDir())
	e.svc.Start()
	entry := wpEntry(wpWriter, "first")
	entry.Producer, entry.ClientID = "127.0.0.2:5000", "prover"
	if err := e.produce(t, wpLogstore, 0, entry); err != nil {
		t.Fatal(err)
	}
	logs := e.fake.Logs(wpProject, wpLogstore)
	if len(logs) != 1 || logs[0].Source != "127.0.0.2" || len(logs[0].Tags) != 1 || logs[0].Tags[0] != (slsfake.KV{Key: "client_id", Value: "prover"}) {
		t.Fatalf("the proof stored %+v", logs)
	}
}
