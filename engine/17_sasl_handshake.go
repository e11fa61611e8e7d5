package engine

// SaslHandshake: v0 and v1. Mechanisms per listener: PLAIN (AccessKeys as
// SLS's endpoint, or relay-user passwords on SASL_SSL), SCRAM-SHA-256 and
// SCRAM-SHA-512 (relay users).
//
// Behaviour:
//   - The answer lists the mechanisms the listener offers
//     (ListenerOptions.Mechanisms); another one gets
//     UNSUPPORTED_SASL_MECHANISM with the list.
//   - v0 (old sarama, the Beats' fork, ruby-kafka): after the response the
//     client sends bare size-prefixed SASL tokens, not Kafka requests, and
//     gets bare size-prefixed answers: one for PLAIN (empty), two for
//     SCRAM (server-first, server-final). A failure closes the
//     connection, as Kafka does.
//   - v1: the tokens come in SaslAuthenticate requests.
//   - On a listener without SASL, or once authenticated, the answer is
//     ILLEGAL_SASL_STATE (re-authentication, KIP-368, is not offered).

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(17, api{min: 0, max: 1, beforeAuth: true, handle: (*session).handleSASLHandshake})
}

func (s *session) handleSASLHandshake(r *request) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = s.ln.opts.mechanisms()
	switch {
	case s.stage != saslNone:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		s.refuse(RefusalProtocol, "refused", "SaslHandshake after the SASL exchange began, or on a listener without SASL")
	case !slices.Contains(resp.SupportedMechanisms, req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		s.refuse(RefusalAuthentication, "SASL mechanism not offered", fmt.Sprintf("mechanism %q is not offered here (%s are)", logName(req.Mechanism), strings.Join(resp.SupportedMechanisms, ", ")))
	case req.Version == 0:
		s.sasl, s.saslName = s.newMechanism(req.Mechanism), req.Mechanism
		s.stage = saslRawToken
	default:
		s.sasl, s.saslName = s.newMechanism(req.Mechanism), req.Mechanism
		s.stage = saslAuthenticate
	}
	s.respond(r.slot, r.hdr.corrID, resp)
}

// handleRawSASLToken runs a bare token that follows SaslHandshake v0.
func (s *session) handleRawSASLToken(token []byte) {
	reply, done, clientErr := s.saslStep(s.saslName, token)
	if clientErr != "" {
		s.fail("SASL authentication failed")
		return
	}
	if done {
		s.sasl = nil
	}
	s.complete(s.reserve(false), rawToken(reply), false)
}

func (s *session) authenticate(p Principal) {
	s.principal = p
	s.loggedIn.Store(&p)
	s.stage = saslAuthenticated
	s.authenticated.Store(true)
}
