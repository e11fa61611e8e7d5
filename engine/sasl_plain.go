package engine

import (
	"bytes"
	"errors"
	"strings"

	"github.com/slsrelay/slsrelay/wal"
)

// parsePlain reads a SASL PLAIN message (RFC 4616: authzid NUL authcid NUL
// passwd) as SLS's Kafka endpoint defines it: the username is the Project,
// the password AccessKeyId#AccessKeySecret. Errors say what is wrong
// without repeating the password.
func parsePlain(token []byte) (Principal, error) {
	parts := bytes.Split(token, []byte{0})
	if len(parts) != 3 {
		return Principal{}, errors.New("not a SASL PLAIN message (expected authzid NUL username NUL password)")
	}
	authzid, user, password := string(parts[0]), string(parts[1]), string(parts[2])
	if user == "" {
		return Principal{}, errors.New("empty username: it must be the SLS project name")
	}
	if authzid != "" && authzid != user {
		return Principal{}, errors.New("the authorization id differs from the username")
	}
	akid, secret, ok := strings.Cut(password, "#")
	switch {
	case !ok:
		return Principal{}, errors.New("the password must be AccessKeyId#AccessKeySecret, and it has no '#'")
	case akid == "":
		return Principal{}, errors.New("the password has an empty AccessKeyId before '#'")
	case secret == "":
		return Principal{}, errors.New("the password has an empty AccessKeySecret after '#'")
	}
	return Principal{Project: user, Credential: wal.Credential{AccessKeyID: akid, AccessKeySecret: secret}}, nil
}
