package engine

import (
	"crypto/x509"
)

// DropRevokedUsers closes the connections of relay users that
// Options.Users no longer has, or has with another project, key, rights or
// credentials, and those whose client certificate no longer maps to their
// user, and returns how many it closed. Call it after the
// directory's Reload (SIGHUP): a removed user then loses its connections
// at once and its next login fails; a changed one logs in again under its
// new entry. Safe for concurrent use.
func (s *Server) DropRevokedUsers() int {
	if s.opts.Users == nil {
		return 0
	}
	n := 0
	s.sessions.Range(func(k, _ any) bool {
		sess := k.(*session)
		u := sess.user.Load()
		if u == nil {
			return true
		}
		if s.revoked(u, sess.cert.Load()) {
			sess.fail("relay user %q was removed or changed by a reload, or its client certificate no longer maps to it", u.Name)
			n++
		}
		return true
	})
	return n
}

// revoked reports whether a login as u, with the client certificate cert
// (nil for a SASL login), no longer holds: Options.Users has no u, or
// has it changed, or maps cert to no user or another one (a certificate
// taken off a user must not keep its connections).
func (s *Server) revoked(u *RelayUser, cert *x509.Certificate) bool {
	if cur, ok := s.opts.Users.User(u.Name); !ok || !sameUser(cur, u) {
		return true
	}
	if cert == nil {
		return false
	}
	cur, ok := s.opts.Users.CertUser(cert)
	return !ok || !sameUser(cur, u)
}

// certLogin logs an SSL listener's connection in as the relay user its
// verified client certificate maps to; false (and the connection is
// closed) if it maps to none. Called once, before any frame is read.
func (s *session) certLogin(chain []*x509.Certificate) bool {
	if len(chain) > 0 {
		// Kept before the login, so that DropRevokedUsers, seeing the
		// user, sees the certificate too.
		s.cert.Store(chain[0])
		if u, ok := s.srv.opts.Users.CertUser(chain[0]); ok && s.login(&login{principal: u.Principal, user: u}) {
			return true
		}
	}
	subject := ""
	if len(chain) > 0 {
		subject = chain[0].Subject.String()
	}
	s.loginFailed("certificate", &authFailure{user: subject, reason: "the client certificate maps to no relay user"})
	s.fail("client certificate of no relay user")
	return false
}
