package engine

import (
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProducerIDLayout: the node is in bits 62–53, IDs are non-negative,
// a later start hands out larger IDs, and nodes' ranges never meet.
func TestProducerIDLayout(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	f := func(node int32, now time.Time) {
		t.Helper()
		id := producerIDBase(node, now)
		if id < 0 {
			t.Errorf("node %d at %v: id %d is negative", node, now, id)
		}
		if got := producerIDNode(id); got != node {
			t.Errorf("node %d at %v: id %#x says node %d", node, now, id, got)
		}
		// A day of handing out 1000 IDs a second stays within the node.
		if got := producerIDNode(id + 86400*1000); got != node {
			t.Errorf("node %d at %v: a day of IDs reaches node %d", node, now, got)
		}
		if later := producerIDBase(node, now.Add(time.Millisecond)); later <= id {
			t.Errorf("node %d: a start 1 ms later begins at %d, not after %d", node, later, id)
		}
	}
	for _, node := range []int32{0, 1, 2, 3, 17, MaxNodeID} {
		f(node, t0)
		f(node, time.Date(2093, 12, 31, 0, 0, 0, 0, time.UTC))
	}
	if MaxNodeID != 1023 {
		t.Errorf("MaxNodeID %d, want 1023 (10 bits)", MaxNodeID)
	}
}

// TestNodeIDRange: a NodeID the layout cannot hold is refused at New.
func TestNodeIDRange(t *testing.T) {
	f := func(node int32, ok bool) {
		t.Helper()
		_, err := New(Options{NodeID: node, Listeners: []ListenerOptions{{Protocol: Plaintext, Bind: "127.0.0.1:0"}}}, testCatalog(), &MemoryAppender{})
		if (err == nil) != ok {
			t.Errorf("NodeID %d: error %v, want ok=%v", node, err, ok)
		}
	}
	f(1, true)
	f(MaxNodeID, true)
	f(MaxNodeID+1, false)
	f(-1, false)
}

// TestInitProducerIDAcrossNodes: two nodes started in the same
// millisecond hand out different producer IDs, each carrying its node.
func TestInitProducerIDAcrossNodes(t *testing.T) {
	t.Parallel()
	ids := map[int64]int32{}
	for _, node := range []int32{2, 3} {
		r := startRelay(t, func(o *Options) { o.NodeID = node })
		c := kafkatest.DialT(t, r.plain, nil)
		for range 3 {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.Version, req.ProducerID, req.ProducerEpoch = 4, -1, -1
			resp := c.RoundTrip(req).(*kmsg.InitProducerIDResponse)
			if resp.ErrorCode != 0 || resp.ProducerID < 0 {
				t.Fatalf("node %d: InitProducerId error %d, id %d", node, resp.ErrorCode, resp.ProducerID)
			}
			if got := producerIDNode(resp.ProducerID); got != node {
				t.Errorf("node %d handed out %#x, which says node %d", node, resp.ProducerID, got)
			}
			if other, dup := ids[resp.ProducerID]; dup {
				t.Errorf("nodes %d and %d both handed out %#x", other, node, resp.ProducerID)
			}
			ids[resp.ProducerID] = node
		}
	}
}
