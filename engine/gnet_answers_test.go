package engine

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// TestGnetAnswersPastIOVMax: a client that pipelines thousands of small
// requests gets every answer, in order, on a connection that stays open.
// The event loop reads such a burst in one OnTraffic while the session
// answers it on its own goroutine, so the answers that complete meanwhile
// queue behind the one write on its way to the loop; Linux's writev takes
// at most 1024 buffers (IOV_MAX) and fails with EINVAL past it, and gnet
// then closes the connection (fails if gnetTransport.wrote hands the
// whole queue to one Writev).
func TestGnetAnswersPastIOVMax(t *testing.T) {
	const n = 8000
	r := startRelayAppender(t, nil, func(o *Options) { o.MaxInFlightPerConn = n })
	c := kafkatest.DialT(t, r.plain, nil)
	req := kmsg.NewPtrApiVersionsRequest() // v0: a 20-byte frame, answered at once
	var burst []byte
	for i := range n {
		burst = append(burst, kafkatest.EncodeRequest(int32(i), req)...)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // all at once, while the answers are read
		defer wg.Done()
		_ = c.Conn().SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Conn().Write(burst); err != nil {
			t.Errorf("write: %v", err)
		}
	}()
	defer wg.Wait()
	for i := range n {
		frame, err := c.ReadFrame()
		if err == nil {
			_, err = kafkatest.ParseResponse(frame, int32(i), req)
		}
		if err != nil {
			t.Fatalf("answer %d of %d: %v", i, n, err)
		}
	}
}
