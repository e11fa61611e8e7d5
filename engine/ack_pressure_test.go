package engine

import (
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
)

// heldAppender stores through its MemoryAppender only once release is
// closed: Produce requests stay decoded and unanswered until then.
type heldAppender struct {
	*MemoryAppender
	release chan struct{}
}

func (a heldAppender) Append(k wal.StreamKey, e *wal.Entry, durable bool, done func(int64, error)) {
	go func() {
		<-a.release
		a.MemoryAppender.Append(k, e, durable, done)
	}()
}

// ProducePending counts Produce requests from their decoding to their
// answer: the writers' signal to leave the CPU to acknowledgements.
func TestProducePendingCountsUnansweredProduce(t *testing.T) {
	release := make(chan struct{})
	r := startRelayAppender(t, func(m *MemoryAppender) Appender { return heldAppender{m, release} })
	k := r.dialAs(t, "PLAINTEXT")
	before := ProducePending()
	corrs, err := k.SendAll(
		kafkatest.ProduceValues(testTopic, 0, -1, "a"),
		kafkatest.ProduceValues(testTopic, 1, 1, "b"),
		kafkatest.ProduceValues(testTopic, 0, 1, "c"),
	)
	if err != nil {
		t.Fatal(err)
	}
	awaitCond(t, 5*time.Second, "3 Produce requests pending", func() bool { return ProducePending() == before+3 })
	close(release)
	for _, corr := range corrs {
		resp, err := k.Recv(corr, kafkatest.ProduceValues(testTopic, 0, 1), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := kafkatest.CheckProduced(resp); err != nil {
			t.Fatal(err)
		}
	}
	// (The count drops right after the answer is queued.)
	awaitCond(t, 5*time.Second, "no Produce request pending once answered", func() bool { return ProducePending() == before })
}
