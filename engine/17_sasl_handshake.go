package engine

// SaslHandshake: v0 and v1. Only the PLAIN mechanism.
//
// Behaviour:
//   - v0 (old sarama, the Beats' fork, ruby-kafka): after the response the
//     client sends a bare size-prefixed PLAIN token, not a Kafka request;
//     success is answered with an empty token, failure closes the
//     connection, as Kafka does.
//   - v1: the token follows in a SaslAuthenticate request.
//   - On a listener without SASL, or once authenticated, the answer is
//     ILLEGAL_SASL_STATE (re-authentication, KIP-368, is not offered).
//   - An unknown mechanism gets UNSUPPORTED_SASL_MECHANISM with the list.

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(17, api{min: 0, max: 1, beforeAuth: true, handle: (*session).handleSASLHandshake})
}

func (s *session) handleSASLHandshake(r *request) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = []string{"PLAIN"}
	switch {
	case s.stage != saslNone:
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case req.Mechanism != "PLAIN":
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	case req.Version == 0:
		s.stage = saslRawToken
	default:
		s.stage = saslAuthenticate
	}
	s.respond(r.slot, r.hdr.corrID, resp)
}

// handleRawSASLToken authenticates the bare token that follows SaslHandshake v0.
func (s *session) handleRawSASLToken(token []byte) {
	p, err := parsePlain(token)
	if err != nil {
		s.srv.log.Warn("SASL authentication failed", "listener", s.ln.opts.Name, "peer", s.peer, "reason", err.Error())
		s.ln.metrics.saslFailures.Inc()
		s.fail("SASL authentication failed")
		return
	}
	s.authenticate(p)
	// An empty token, size-prefixed, is PLAIN's success answer.
	s.complete(s.reserve(false), binary.BigEndian.AppendUint32(nil, 0), false)
}

func (s *session) authenticate(p Principal) {
	s.principal = p
	s.stage = saslAuthenticated
	s.authenticated.Store(true)
}
