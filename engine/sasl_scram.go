package engine

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
)

// SCRAM mechanisms (RFC 5802, with SHA-256 per RFC 7677 and SHA-512 by the
// same construction, as Kafka names and offers them:
// https://kafka.apache.org/documentation/#security_sasl_scram).
const (
	SCRAMSHA256 = "SCRAM-SHA-256"
	SCRAMSHA512 = "SCRAM-SHA-512"
	PLAIN       = "PLAIN"
)

// Iteration bounds for SCRAM credentials. Kafka refuses fewer than 4096
// (RFC 7677 §4 asks for at least 4096 with SHA-256) and more than 16384
// (Kafka's ScramMechanism.maxIterations); clients accept anything, so the
// relay keeps to Kafka's range.
const (
	MinSCRAMIterations = 4096
	MaxSCRAMIterations = 16384
)

// SCRAMCredential is what a server stores for one user and mechanism (RFC
// 5802 §3): the salt, the iteration count, StoredKey = H(ClientKey) and
// ServerKey. The password cannot be recovered from it, and it does not
// let anyone log in (a proof needs ClientKey, which H hides).
type SCRAMCredential struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// scramHash returns the hash of a SCRAM mechanism, or nil for another name.
func scramHash(mechanism string) func() hash.Hash {
	switch mechanism {
	case SCRAMSHA256:
		return sha256.New
	case SCRAMSHA512:
		return sha512.New
	}
	return nil
}

// DeriveSCRAM computes the stored credential of password for mechanism
// (RFC 5802 §3):
//
//	SaltedPassword = Hi(password, salt, i)   (PBKDF2 with HMAC-H)
//	ClientKey      = HMAC(SaltedPassword, "Client Key")
//	StoredKey      = H(ClientKey)
//	ServerKey      = HMAC(SaltedPassword, "Server Key")
//
// The password is used as its UTF-8 bytes without SASLprep, as Kafka's
// ScramFormatter and the Kafka clients (franz-go, sarama's xdg-go,
// librdkafka) do, so that any password they can send matches.
func DeriveSCRAM(mechanism, password string, salt []byte, iterations int) (SCRAMCredential, error) {
	h := scramHash(mechanism)
	if h == nil {
		return SCRAMCredential{}, fmt.Errorf("%q is not a SCRAM mechanism (want %s or %s)", mechanism, SCRAMSHA256, SCRAMSHA512)
	}
	if iterations < MinSCRAMIterations || iterations > MaxSCRAMIterations {
		return SCRAMCredential{}, fmt.Errorf("SCRAM iterations %d outside %d..%d", iterations, MinSCRAMIterations, MaxSCRAMIterations)
	}
	if len(salt) == 0 {
		return SCRAMCredential{}, fmt.Errorf("empty SCRAM salt")
	}
	salted, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return SCRAMCredential{}, fmt.Errorf("cannot derive SCRAM key: %w", err)
	}
	clientKey := hmacSum(h, salted, []byte("Client Key"))
	return SCRAMCredential{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  hashSum(h, clientKey),
		ServerKey:  hmacSum(h, salted, []byte("Server Key")),
	}, nil
}

// MatchesPassword reports whether password derives c, in constant time
// over the keys: it serves PLAIN against relay-user passwords.
func (c SCRAMCredential) MatchesPassword(mechanism, password string) bool {
	d, err := DeriveSCRAM(mechanism, password, c.Salt, c.Iterations)
	return err == nil && subtle.ConstantTimeCompare(d.StoredKey, c.StoredKey) == 1 &&
		subtle.ConstantTimeCompare(d.ServerKey, c.ServerKey) == 1
}

func hmacSum(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

func hashSum(h func() hash.Hash, b []byte) []byte {
	d := h()
	d.Write(b)
	return d.Sum(nil)
}
