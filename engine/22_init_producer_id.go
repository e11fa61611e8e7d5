package engine

// InitProducerId: v0 to v5, for idempotent producers (the default of Java
// clients since 3.0 and of franz-go).
//
// Behaviour:
//   - Hands out a fresh producer ID with epoch 0. IDs carry the NodeID and
//     start from the clock at start-up (producer_id.go), so no other node
//     of the fleet and no restart of this one hands out a running
//     producer's ID.
//   - v3+ with a current ID and epoch (KIP-360, after a sequence error):
//     the same ID with the epoch bumped; a new ID when the epoch would
//     overflow.
//   - A transactional ID gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED: the
//     relay has no transactions (SLS has none to map them to).

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(22, api{min: 0, max: 5, handle: (*session).handleInitProducerID})
}

func (s *session) handleInitProducerID(r *request) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	switch {
	case req.TransactionalID != nil:
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
	case req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16:
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
	default:
		resp.ProducerID, resp.ProducerEpoch = s.srv.nextProducerID.Add(1), 0
	}
	s.respond(r.slot, r.hdr.corrID, resp)
}
