package engine

import (
	"bytes"
	"errors"
	"strings"

	"github.com/slsrelay/slsrelay/wal"
)

// splitPlain reads a SASL PLAIN message (RFC 4616: authzid NUL authcid NUL
// passwd). Errors say what is wrong without repeating the password.
func splitPlain(token []byte) (user, password string, err error) {
	parts := bytes.Split(token, []byte{0})
	if len(parts) != 3 {
		return "", "", errors.New("not a SASL PLAIN message (expected authzid NUL username NUL password)")
	}
	authzid, user, password := string(parts[0]), string(parts[1]), string(parts[2])
	if user == "" {
		return "", "", errors.New("empty username")
	}
	if authzid != "" && authzid != user {
		return "", "", errors.New("the authorization id differs from the username")
	}
	return user, password, nil
}

// accessKeyPrincipal reads PLAIN as SLS's Kafka endpoint defines it: the
// username is the Project, the password AccessKeyId#AccessKeySecret.
// Errors say what is wrong without repeating the password.
func accessKeyPrincipal(project, password string) (Principal, error) {
	akid, secret, ok := strings.Cut(password, "#")
	switch {
	case strings.Contains(project, "#"):
		// No Project has a '#' (withoutKeySecret): this is a key where
		// the Project belongs, which must not become a log line's or
		// a metric label's project.
		return Principal{}, errors.New("the username must be the Project; it has a '#', as AccessKeyId#AccessKeySecret has (the password's place)")
	case !ok:
		return Principal{}, errors.New("the password must be AccessKeyId#AccessKeySecret, and it has no '#'")
	case akid == "":
		return Principal{}, errors.New("the password has an empty AccessKeyId before '#'")
	case secret == "":
		return Principal{}, errors.New("the password has an empty AccessKeySecret after '#'")
	}
	return Principal{Project: project, Credential: wal.Credential{AccessKeyID: akid, AccessKeySecret: secret}}, nil
}

// plainMechanism is PLAIN as a listener's Plain setting says: against
// AccessKeys, relay-user passwords, or either.
type plainMechanism struct {
	mode  string
	users UserDirectory
	done  bool
}

func (m *plainMechanism) next(token []byte) ([]byte, *login, error) {
	if m.done {
		return nil, nil, failAuth("", "PLAIN takes one message")
	}
	m.done = true
	user, password, err := splitPlain(token)
	if err != nil {
		return nil, nil, &authFailure{reason: err.Error(), public: true}
	}
	if m.mode == PlainRelayUsers || m.mode == PlainEither {
		if u, ok := m.users.User(user); ok || m.mode == PlainRelayUsers {
			l, err := checkUserPassword(user, u, password)
			return nil, l, err
		}
	}
	p, err := accessKeyPrincipal(user, password)
	if err != nil {
		return nil, nil, &authFailure{user: user, reason: err.Error(), public: true}
	}
	return nil, &login{principal: p}, nil
}

// checkUserPassword checks password against u's SCRAM credential
// (either serves: both derive from the same password). An unknown user
// (u nil) costs a derivation too, so timing does not tell them apart.
func checkUserPassword(name string, u *RelayUser, password string) (*login, error) {
	if u != nil {
		for _, mech := range []string{SCRAMSHA512, SCRAMSHA256} {
			if c, ok := u.SCRAM[mech]; ok {
				if c.MatchesPassword(mech, password) {
					return &login{principal: u.Principal, user: u}, nil
				}
				return nil, failAuth(name, "wrong password")
			}
		}
	}
	_, _ = DeriveSCRAM(SCRAMSHA512, password, []byte("decoy salt"), MinSCRAMIterations)
	return nil, failAuth(name, "unknown user or no password credential")
}
