package users

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/slsrelay/slsrelay/engine"
)

// DefaultIterations is the SCRAM iteration count `user add` uses: twice
// Kafka's minimum (4096, RFC 7677 §4's floor), well inside Kafka's maximum.
const DefaultIterations = 8192

// saltBytes is the length of a new salt (RFC 5802 leaves it open; 16
// random bytes make precomputation pointless).
const saltBytes = 16

// NewSCRAM derives a stored SCRAM credential of password for mechanism
// with a fresh random salt. The password is not kept.
func NewSCRAM(mechanism, password string, iterations int) (*SCRAM, error) {
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	c, err := engine.DeriveSCRAM(mechanism, password, salt, iterations)
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString
	return &SCRAM{Salt: enc(c.Salt), Iterations: c.Iterations, StoredKey: enc(c.StoredKey), ServerKey: enc(c.ServerKey)}, nil
}

// credential decodes a stored credential and checks its shape.
func (s *SCRAM) credential(mechanism string, keySize int) (engine.SCRAMCredential, error) {
	dec := base64.StdEncoding.DecodeString
	salt, err1 := dec(s.Salt)
	stored, err2 := dec(s.StoredKey)
	server, err3 := dec(s.ServerKey)
	switch {
	case err1 != nil || err2 != nil || err3 != nil:
		return engine.SCRAMCredential{}, fmt.Errorf("%s: salt, stored_key and server_key must be base64", mechanism)
	case len(salt) == 0:
		return engine.SCRAMCredential{}, fmt.Errorf("%s: empty salt", mechanism)
	case len(stored) != keySize || len(server) != keySize:
		return engine.SCRAMCredential{}, fmt.Errorf("%s: stored_key and server_key must be %d bytes", mechanism, keySize)
	case s.Iterations < engine.MinSCRAMIterations || s.Iterations > engine.MaxSCRAMIterations:
		return engine.SCRAMCredential{}, fmt.Errorf("%s: iterations %d outside %d..%d", mechanism, s.Iterations, engine.MinSCRAMIterations, engine.MaxSCRAMIterations)
	}
	return engine.SCRAMCredential{Salt: salt, Iterations: s.Iterations, StoredKey: stored, ServerKey: server}, nil
}
