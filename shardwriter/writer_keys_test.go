package shardwriter

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// holdListShards is a RoundTripper that holds the ListShards requests
// signed by one AccessKey id until release is closed.
type holdListShards struct {
	next    http.RoundTripper
	akid    string
	held    chan struct{} // closed when the first such request arrives
	other   chan struct{} // closed when one signed by another key arrives
	once    [2]sync.Once
	release chan struct{}
}

func (h *holdListShards) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/shards") {
		if !strings.Contains(req.Header.Get("Authorization"), " "+h.akid+":") {
			h.once[1].Do(func() { close(h.other) })
			return h.next.RoundTrip(req)
		}
		h.once[0].Do(func() { close(h.held) })
		<-h.release
	}
	return h.next.RoundTrip(req)
}

// Two streams of one Logstore, written with two keys, start with no shard
// list: one key SLS no longer knows (deleted), the other valid. Each
// writer lists the shards with its own key; SLS's refusal of the deleted
// key is that key's alone, and must not make dead letters of the valid
// key's logs (nor refuse the valid key).
func TestWriterShardListRefusalIsPerKey(t *testing.T) {
	gone := wal.Credential{AccessKeyID: "deleted-akid", AccessKeySecret: "deleted-secret"}
	var hold *holdListShards
	e := wtStart(t, func(o *Options) {
		hc := *o.HTTPClient
		hold = &holdListShards{next: hc.Transport, akid: gone.AccessKeyID, held: make(chan struct{}), other: make(chan struct{}), release: make(chan struct{})}
		hc.Transport = hold
		o.HTTPClient = &hc
	})
	goneEntry := wtEntry(t, wtRecords("gone", 4))
	goneEntry.Credential = gone
	e.appendEntry(goneEntry) // partition 0
	e.svc.Start()
	select {
	case <-hold.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the deleted key's writer did not list the shards")
	}
	// The valid key's stream appears while the deleted key's ListShards
	// is under way.
	errc := make(chan error, 1)
	e.w.Append(wal.StreamKey{Project: wtProject, Logstore: wtLogstore, Partition: 1}, wtEntry(t, wtRecords("valid", 4)), true, func(_ int64, err error) { errc <- err })
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Its writer asks for the shards too: with its own request, or by
	// waiting for the deleted key's.
	select {
	case <-hold.other:
	case <-time.After(3 * time.Second):
	}
	close(hold.release)
	e.waitFor("both entries delivered or dead-lettered", func() bool { return e.w.DeadLetterCount()+len(e.stored())/4 >= 2 })
	time.Sleep(100 * time.Millisecond)
	if n := len(e.stored()); n != 4 {
		t.Errorf("the stand-in holds %d logs, want the valid key's 4", n)
	}
	dls, _ := e.deadRecords()
	for _, dl := range dls {
		if dl.Entry.Credential.AccessKeyID != gone.AccessKeyID {
			t.Errorf("dead letter %d of key %s (%s): only the deleted key's entry may be", dl.ID, dl.Entry.Credential.AccessKeyID, dl.Reason)
		}
	}
	if err := e.svc.Catalog().deniedErr(authKey{wtProject, wtLogstore, wtCred}); err != nil {
		t.Errorf("the valid key is refused: %v", err)
	}
}
