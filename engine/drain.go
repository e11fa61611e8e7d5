package engine

// The drain of one node of a fleet (SIGTERM, a rolling update): its
// producers move to the other nodes behind the shared address before it
// stops, and nothing read is left unanswered. See 03_metadata.go for why
// the fleet is one broker at one address.

import (
	"context"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// drainIdleAfter: while draining, a connection that has awaited nothing
// and sent nothing for this long is closed, so its client reconnects
// through the shared address to another node. Not at once: a client that
// just connected is between the requests of its handshake.
const drainIdleAfter = 500 * time.Millisecond

// drainRefused counts Produce requests a draining node answered with
// NOT_LEADER_OR_FOLLOWER (their producers retry on another node).
var drainRefused = metrics.GetOrCreateCounter(`slsrelay_drain_refused_produce_total`)

// drainSweep is how often a drain looks for idle connections.
const drainSweep = 100 * time.Millisecond

// Drain is the graceful stop of a node behind a shared address:
//
//  1. Ready turns false at once (/readyz answers 503: Kubernetes' readiness
//     probe or the load balancer's health check takes the node out).
//  2. For DrainLinger it keeps listening and reading. Requests read before
//     the drain are answered as usual. A Produce read after it (acks 1 or
//     -1) is answered NOT_LEADER_OR_FOLLOWER for every partition, a
//     retriable error on which every client refreshes metadata and
//     retries; an acks=0 Produce is stored (its producer cannot retry).
//     The answer to a Produce or Metadata is the connection's last: the
//     connection is closed after it, so the retry dials the shared address
//     anew and reaches another node. Connections idle for drainIdleAfter
//     are closed too.
//  3. It then stops like Shutdown: no more reading, requests already read
//     answered (their appends done), listeners closed.
//
// What the node stored stays in its WAL and is delivered by its writers,
// now or after its restart. ctx bounds the whole drain (the pod's grace
// period); when it ends, Drain closes at once, as Shutdown does.
func (s *Server) Drain(ctx context.Context) error {
	s.leaving.Store(true)
	s.log.Info("draining: producers are sent elsewhere", "linger", s.opts.DrainLinger)
	linger := time.NewTimer(s.opts.DrainLinger)
	defer linger.Stop()
	tick := time.NewTicker(drainSweep)
	defer tick.Stop()
	for done := false; !done; {
		s.closeIdle(time.Now().Add(-drainIdleAfter))
		select {
		case <-tick.C:
		case <-linger.C:
			done = true
		case <-ctx.Done():
			done = true
		}
	}
	return s.Shutdown(ctx)
}

// closeIdle closes every connection that awaits no answer and has sent
// nothing since before.
func (s *Server) closeIdle(before time.Time) {
	s.sessions.Range(func(k, _ any) bool {
		sess := k.(*session)
		if sess.idle() && sess.lastActive.Load() < before.UnixNano() {
			sess.leave()
		}
		return true
	})
}

// leave closes the connection for a drain: not a failure, so no warning.
func (s *session) leave() {
	s.mu.Lock()
	already := s.closed
	s.closed, s.failed = true, true
	s.mu.Unlock()
	if !already {
		s.srv.log.Debug("closing idle connection: draining", "listener", s.ln.opts.Name, "peer", s.peer)
		s.t.close()
	}
}

// refuseProduce answers a Produce read during a drain with
// NOT_LEADER_OR_FOLLOWER for every partition, storing nothing.
func (s *session) refuseProduce(r *request) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition, p.BaseOffset = rp.Partition, -1
			p.ErrorCode = kerr.NotLeaderForPartition.Code
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	drainRefused.Inc()
	s.respond(r.slot, r.hdr.corrID, resp)
}
