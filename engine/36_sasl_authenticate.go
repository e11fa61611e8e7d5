package engine

// SaslAuthenticate: v0 to v2, after SaslHandshake v1, PLAIN only.
//
// Behaviour: a well-formed PLAIN token (username = Project, password =
// AccessKeyId#AccessKeySecret) authenticates the connection; whether the key
// may write is the catalog's answer per topic (TOPIC_AUTHORIZATION_FAILED),
// as on SLS's own endpoint. A malformed token gets SASL_AUTHENTICATION_FAILED
// with a message saying what is wrong, then the connection is closed. Out of
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
		s.complete(r.slot, appendResponse(nil, r.hdr.corrID, resp), true)
		return
	}
	p, err := parsePlain(req.SASLAuthBytes)
	if err != nil {
		s.srv.log.Warn("SASL authentication failed", "listener", s.ln.opts.Name, "peer", s.peer, "reason", err.Error())
		s.ln.metrics.saslFailures.Inc()
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed: " + err.Error()
		resp.ErrorMessage = &msg
		s.complete(r.slot, appendResponse(nil, r.hdr.corrID, resp), true)
		return
	}
	s.authenticate(p)
	s.respond(r.slot, r.hdr.corrID, resp)
}
