package engine

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// TestAcks0ErrorClosesConnection: an acks=0 Produce gets no answer, so a
// partition the relay cannot store (unknown topic or partition, a corrupt
// batch, a storage error) must not be dropped without a sign. A Kafka
// broker closes the connection then, "so that the producer client will
// know that some error has happened and will refresh its metadata"
// (KafkaApis.handleProduceRequest, acks == 0 && errorInResponse →
// closeConnection). An acks=0 Produce stored whole keeps the connection
// open.
func TestAcks0ErrorClosesConnection(t *testing.T) {
	t.Parallel()
	good := kafkatest.RecordBatch("fine")
	corrupt := kafkatest.RecordBatch("bad crc")
	corrupt[len(corrupt)-1] ^= 0xff // the CRC covers the last byte
	f := func(name string, fail error, req *kmsg.ProduceRequest, wantClosed bool) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRelay(t)
			if fail != nil {
				r.app.SetFail(fail)
			}
			c := kafkatest.DialT(t, r.plain, nil)
			c.Send(req)
			if wantClosed {
				c.ExpectClosedSilent()
				return
			}
			// Still open: a request after it is answered.
			resp := c.RoundTrip(kafkatest.ProduceRequest(7, 1, testTopic, map[int32][]byte{0: good}))
			if err := kafkatest.CheckProduced(resp); err != nil {
				t.Fatalf("acks=1 Produce after an acks=0 one stored whole: %v", err)
			}
		})
	}
	f("stored", nil, kafkatest.ProduceRequest(7, 0, testTopic, map[int32][]byte{0: good}), false)
	f("unknown topic", nil, kafkatest.ProduceRequest(7, 0, "no-such-logstore", map[int32][]byte{0: good}), true)
	f("unknown partition", nil, kafkatest.ProduceRequest(7, 0, testTopic, map[int32][]byte{5: good}), true)
	f("corrupt batch beside a good one", nil, kafkatest.ProduceRequest(7, 0, testTopic, map[int32][]byte{0: good, 1: corrupt}), true)
	f("storage error", errors.New("disk on fire"), kafkatest.ProduceRequest(7, 0, testTopic, map[int32][]byte{0: good}), true)
}
