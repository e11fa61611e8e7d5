package engine

import (
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTopicIDsAcrossNodes: a Produce v13 naming a topic by the ID another
// node reported (or this node before its restart) is stored, not answered
// UNKNOWN_TOPIC_ID; a made-up ID still is.
func TestTopicIDsAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b := startRelay(t), startRelay(t)
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Version = 12
	topic := testTopic
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	mresp := kafkatest.DialT(t, a.plain, nil).RoundTrip(mreq).(*kmsg.MetadataResponse)
	id := mresp.Topics[0].TopicID
	f := func(id [16]byte, want int16) {
		t.Helper()
		req := kafkatest.ProduceRequest(13, -1, "", map[int32][]byte{0: kafkatest.RecordBatch("by topic id")})
		req.Topics[0].TopicID = id
		resp := kafkatest.DialT(t, b.plain, nil).RoundTrip(req).(*kmsg.ProduceResponse)
		if got := kafkatest.PartitionErrors(resp)[0]; got != want {
			t.Errorf("Produce v13 by ID %x on the other node: error %d, want %d", id, got, want)
		}
	}
	f(id, 0)
	f([16]byte{1, 2, 3}, kerr.UnknownTopicID.Code)
	if n := len(b.entries(testTopic, 0)); n != 1 {
		t.Errorf("the other node stored %d entries, want 1", n)
	}
}
