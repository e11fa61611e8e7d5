package engine

// SaslAuthenticate: v0 to v2, after SaslHandshake v1.
//
// Behaviour: each request carries one client message of the mechanism
// chosen in the handshake and gets the server's answer (PLAIN: one round;
// SCRAM: two). PLAIN with AccessKeys (username = Project, password =
// AccessKeyId#AccessKeySecret) authenticates on a well-formed token;
// whether the key may write is the catalog's answer per topic
// (TOPIC_AUTHORIZATION_FAILED), as on SLS's own endpoint, and a malformed
// token gets SASL_AUTHENTICATION_FAILED saying what is wrong. A relay
// user's failed login gets SASL_AUTHENTICATION_FAILED with Kafka's generic
// message, whatever was wrong. Either failure closes the connection. Out of
// order (no handshake first) it is ILLEGAL_SASL_STATE and closed.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(36, api{min: 0, max: 2, beforeAuth: true, handle: (*session).handleSASLAuthenticate})
}

func (s *session) handleSASLAuthenticate(r *request) {
	req := r.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if s.stage != saslAuthenticate {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate must follow a SaslHandshake v1 on a SASL listener"
		resp.ErrorMessage = &msg
		s.refuse(RefusalProtocol, "closing connection", msg)
		s.complete(r.slot, appendResponse(nil, r.hdr.corrID, resp), true)
		return
	}
	reply, done, clientErr := s.saslStep(s.saslName, req.SASLAuthBytes)
	if clientErr != "" {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = &clientErr
		s.complete(r.slot, appendResponse(nil, r.hdr.corrID, resp), true)
		return
	}
	if done {
		s.sasl = nil
	}
	resp.SASLAuthBytes = reply
	s.respond(r.slot, r.hdr.corrID, resp)
}
