package engine

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// Shippers lists each connection with what it said of itself, what it
// stored and its rate over the last whole seconds; a closed connection
// leaves the list.
func TestShippersListsConnections(t *testing.T) {
	r := startRelay(t)
	c := kafkatest.DialT(t, r.plain, nil)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "test-shipper", "1.2.3"
	c.RoundTrip(av)
	batch := kafkatest.RecordBatch("a", "b", "c")
	for i := 0; i < 2; i++ {
		resp := c.RoundTrip(kafkatest.ProduceRequest(9, 1, testTopic, map[int32][]byte{0: batch})).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: error %d", code)
		}
	}
	find := func() (Shipper, bool) {
		for _, sh := range r.srv.Shippers() {
			if sh.Software != "" {
				return sh, true
			}
		}
		return Shipper{}, false
	}
	sh, ok := find()
	if !ok {
		t.Fatalf("the connection is not listed: %+v", r.srv.Shippers())
	}
	f := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}
	f("client id", sh.ClientID, kafkatest.ClientID)
	f("software", sh.Software, "test-shipper/1.2.3")
	f("listener", sh.Listener, "PLAINTEXT")
	f("project", sh.Project, testProject)
	f("records", sh.Records, int64(6))
	f("bytes", sh.Bytes, int64(2*len(batch)))
	if !slices.Equal(sh.Topics, []string{testTopic}) {
		t.Fatalf("topics %v", sh.Topics)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	sh, _ = find()
	f("records/s", sh.RecordsPerSec, 6.0/rateWindow)
	f("bytes/s", sh.BytesPerSec, float64(2*len(batch))/rateWindow)

	for _, l := range r.srv.Listeners() {
		if l.Name == "PLAINTEXT" && (l.Connections != 1 || l.Addr != r.plain) {
			t.Fatalf("listener %+v, want 1 connection at %s", l, r.plain)
		}
	}
	c.Conn().Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := find(); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection is still listed")
		}
	}
}
