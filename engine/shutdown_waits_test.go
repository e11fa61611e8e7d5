package engine

import (
	"context"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
)

// gatedThrottler throttles every Produce to one logstore for d, its first
// one only once gate is closed: the test decides when that request's
// mute begins.
type gatedThrottler struct {
	fixedThrottler
	gate chan struct{}
}

func (g *gatedThrottler) ThrottleTime(k wal.StreamKey, n int) time.Duration {
	if k.Logstore == g.logstore {
		<-g.gate
	}
	return g.fixedThrottler.ThrottleTime(k, n)
}

// queuedFrames is how many frames the server's one connection has read and
// not yet begun to handle.
func queuedFrames(srv *Server) int {
	n := 0
	srv.sessions.Range(func(k, _ any) bool {
		s := k.(*session)
		s.mu.Lock()
		n += len(s.queue)
		s.mu.Unlock()
		return true
	})
	return n
}

// shutdownBehindMute sends two acks=0 Produce requests in one write, the
// second read while the first is handled and before the first's throttle
// mutes the connection, so that the second waits the mute out; with
// hangUp the producer closes its connection before the mute begins. Once
// the first is stored it calls Shutdown and fails the test unless the
// second is stored when Shutdown returns.
func shutdownBehindMute(t *testing.T, hangUp bool) {
	t.Parallel()
	th := &gatedThrottler{fixedThrottler: fixedThrottler{logstore: testTopic, d: 1500 * time.Millisecond}, gate: make(chan struct{})}
	r := startRelay(t, func(o *Options) { o.Throttle = th })
	c := kafkatest.DialT(t, r.plain, nil)
	throttled := kafkatest.ProduceRequest(7, 0, testTopic, map[int32][]byte{0: kafkatest.RecordBatch("throttled")})
	behind := kafkatest.ProduceRequest(7, 0, testTopic4, map[int32][]byte{0: kafkatest.RecordBatch("read before the stop")})
	c.Write(append(kafkatest.EncodeRequest(1, throttled), kafkatest.EncodeRequest(2, behind)...))
	awaitCond(t, 5*time.Second, "the second request to be read", func() bool { return queuedFrames(r.srv) == 1 })
	if hangUp {
		c.Conn().Close()
		awaitCond(t, 5*time.Second, "the relay to see the connection closed", func() bool { return openSessionsOf(r.srv) == 0 })
	}
	close(th.gate)
	first := wal.StreamKey{Project: testProject, Logstore: testTopic, Partition: 0}
	awaitCond(t, 5*time.Second, "the throttled request to be stored", func() bool { return len(r.app.Entries(first)) == 1 })
	if !hangUp {
		awaitCond(t, 5*time.Second, "the second request to wait out the mute", func() bool { return queuedFrames(r.srv) == 0 })
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	second := wal.StreamKey{Project: testProject, Logstore: testTopic4, Partition: 0}
	if n := len(r.app.Entries(second)); n != 1 {
		t.Fatalf("Shutdown returned after %v with the acks=0 batch read before it (producer hung up: %v) stored %d times, want once: it did not wait for the request waiting out the mute",
			time.Since(start).Round(time.Millisecond), hangUp, n)
	}
	t.Logf("Shutdown returned after %v", time.Since(start).Round(time.Millisecond))
}

// TestShutdownWaitsForMutedRequest: a request read before a throttle's
// mute began waits the mute out before it is handled (session.run). It was
// read, so Shutdown (and a drain, which ends with it) must wait for it as
// for any other: an acks=0 batch read before the stop is stored before
// Shutdown returns and the WAL is closed behind it.
func TestShutdownWaitsForMutedRequest(t *testing.T) { shutdownBehindMute(t, false) }

// openSessionsOf counts the server's sessions.
func openSessionsOf(srv *Server) int {
	n := 0
	srv.sessions.Range(func(any, any) bool { n++; return true })
	return n
}

// TestShutdownWaitsForHungUpProducer: an acks=0 producer that sends and
// hangs up at once has its requests handled all the same (gnet's OnClose
// hands over what it read). Shutdown must wait for them as for those of
// a connection still open: here the second waits out the first's
// throttle, and its batch is stored before Shutdown returns and the WAL
// is closed behind it.
func TestShutdownWaitsForHungUpProducer(t *testing.T) { shutdownBehindMute(t, true) }
