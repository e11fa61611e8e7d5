package engine

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// TestTopicIDsAcrossNodes: a Metadata request naming a topic by the ID
// another node reported (or this node before its restart) is answered
// with the topic when the catalog lists it; a made-up ID is
// UNKNOWN_TOPIC_ID.
func TestTopicIDsAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b := startRelay(t), startRelay(t)
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Version = 12
	topic := testTopic
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	mresp := kafkatest.DialT(t, a.plain, nil).RoundTrip(mreq).(*kmsg.MetadataResponse)
	id := mresp.Topics[0].TopicID
	f := func(id [16]byte, wantCode int16, wantTopic string) {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		req.Topics = []kmsg.MetadataRequestTopic{{TopicID: id}}
		resp := kafkatest.DialT(t, b.plain, nil).RoundTrip(req).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("Metadata by ID %x on the other node: %d topics, want 1", id, len(resp.Topics))
		}
		got := resp.Topics[0]
		name := ""
		if got.Topic != nil {
			name = *got.Topic
		}
		if got.ErrorCode != wantCode || name != wantTopic {
			t.Errorf("Metadata by ID %x on the other node: error %d topic %q, want %d %q", id, got.ErrorCode, name, wantCode, wantTopic)
		}
	}
	f(id, 0, testTopic)
	f([16]byte{1, 2, 3}, kerr.UnknownTopicID.Code, "")
}
