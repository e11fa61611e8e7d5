package engine

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
)

// saslMechanism is one SASL exchange of a connection, begun by SaslHandshake.
type saslMechanism interface {
	// next takes the client's message and returns the answer; a non-nil
	// login means the exchange succeeded. Any error ends it.
	next(msg []byte) (reply []byte, l *login, err error)
}

// login is who an exchange authenticated: a principal, and the relay user
// it belongs to (nil for an AccessKey login).
type login struct {
	principal Principal
	user      *RelayUser
}

// decoyKey makes the salts SCRAM shows for unknown users; per process, so
// they are stable while it runs and reveal nothing.
var decoyKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}()

// newMechanism starts an exchange of a mechanism the listener offers.
func (s *session) newMechanism(name string) saslMechanism {
	if h := scramHash(name); h != nil {
		return newSCRAMServer(name, s.srv.opts.Users, decoyKey)
	}
	return &plainMechanism{mode: s.ln.opts.Plain, users: s.srv.opts.Users}
}

// authFailedMessage is what a client is told when a relay-user login
// fails, whatever the reason: Kafka's own wording, which says neither
// whether the user exists nor which part was wrong.
func authFailedMessage(mechanism string) string {
	return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mechanism
}

// saslStep runs one message of the exchange. On success the session is
// authenticated; on failure the failure is counted and logged (rate
// limited) and the message for the client returned.
func (s *session) saslStep(mechanism string, msg []byte) (reply []byte, done bool, clientErr string) {
	reply, l, err := s.sasl.next(msg)
	if err != nil {
		var af *authFailure
		if !errors.As(err, &af) {
			af = &authFailure{reason: err.Error()}
		}
		s.loginFailed(mechanism, af)
		if af.public {
			return nil, false, "Authentication failed: " + af.reason
		}
		return nil, false, authFailedMessage(mechanism)
	}
	if l == nil {
		return reply, false, ""
	}
	if !s.login(l) {
		s.loginFailed(mechanism, &authFailure{user: l.user.Name, reason: "user removed while logging in"})
		return nil, false, authFailedMessage(mechanism)
	}
	return reply, true, ""
}

// login authenticates the connection as l. A relay user removed or changed
// by a reload that raced with this login is refused (see DropRevokedUsers).
func (s *session) login(l *login) bool {
	if u := l.user; u != nil {
		s.user.Store(u)
		if s.srv.revoked(u, s.cert.Load()) {
			s.user.Store(nil)
			return false
		}
		userMetricsFor(u.Name).logins.Inc()
	}
	s.authenticate(l.principal)
	return true
}

// loginFailed counts a failed login and logs it, rate limited, with the
// user name the client gave (never a password or key).
func (s *session) loginFailed(mechanism string, af *authFailure) {
	s.ln.metrics.saslFailures.Inc()
	known := false
	if af.user != "" && s.srv.opts.Users != nil {
		_, known = s.srv.opts.Users.User(af.user)
	}
	userFailureCounter(af.user, known).Inc()
	user := af.user
	if !known {
		user = withoutKeySecret(user)
	}
	s.refuse(RefusalAuthentication, "SASL authentication failed", af.reason, "mechanism", mechanism, "user", logName(user))
}

// withoutKeySecret cuts a name the client gave after its first '#': a
// shipper with username and password swapped sends
// AccessKeyId#AccessKeySecret as its username. No Project has a '#': the
// SDK reaches a Project at the host name <project>.<endpoint>
// (aliyun-log-go-sdk log_project.go, parseEndpoint), where '#' would end
// the URL's host. A relay user's name may, so the names of known users
// are logged whole.
func withoutKeySecret(name string) string {
	if id, _, ok := strings.Cut(name, "#"); ok {
		return id + "#…"
	}
	return name
}

// logName bounds a client-given name in a log line.
func logName(n string) string {
	if len(n) > 64 {
		return n[:64] + "…"
	}
	return strings.ToValidUTF8(n, "?")
}

// rawToken frames a SASL answer of the v0 exchange (size-prefixed, no
// Kafka header).
func rawToken(reply []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(reply))), reply...)
}
