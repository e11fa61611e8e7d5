package wal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// KeySize is the length of Options.EncryptionKey: AES-256.
const KeySize = 32

// ErrNoKey is returned when a credential with a secret must be stored or
// read and no Options.EncryptionKey is configured: the WAL never writes a
// secret in the clear.
var ErrNoKey = errors.New("wal: a credential secret needs an encryption key (Options.EncryptionKey)")

// ParseKey turns the text or bytes of a key file or environment variable
// into a 32-byte key. It accepts 32 raw bytes, 64 hex digits or standard
// base64 of 32 bytes; surrounding white space is ignored.
func ParseKey(b []byte) ([]byte, error) {
	if len(b) == KeySize {
		return append([]byte(nil), b...), nil
	}
	s := strings.TrimSpace(string(b))
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == KeySize {
		return k, nil
	}
	if len(s) == KeySize {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("encryption key is %d bytes: want %d raw bytes, %d hex digits or base64 of %d bytes", len(s), KeySize, 2*KeySize, KeySize)
}

// LoadKeyFile reads a key written as ParseKey accepts (e.g. made with
// `openssl rand -hex 32 > key`).
func LoadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read WAL key file: %w", err)
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("WAL key file %q: %w", path, err)
	}
	return k, nil
}

// KeyFromEnv reads a key from the environment variable name (hex or base64).
func KeyFromEnv(name string) ([]byte, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("WAL key: environment variable %s is not set", name)
	}
	k, err := ParseKey([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("WAL key in $%s: %w", name, err)
	}
	return k, nil
}

// crypter seals credential secrets. Safe for concurrent use.
type crypter struct {
	aead    cipher.AEAD // nil without a key
	hashKey []byte

	// mu protects hashes. A leaf lock (see WAL).
	mu     sync.Mutex
	hashes map[Credential][8]byte // append side: credential → row hash
}

func newCrypter(key []byte) (*crypter, error) {
	c := &crypter{hashes: make(map[Credential][8]byte)}
	if len(key) == 0 {
		return c, nil
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("encryption key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if c.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	// The row hash uses a key derived from, not equal to, the AES key.
	m := hmac.New(sha256.New, key)
	m.Write([]byte("slsrelay wal credential hash"))
	c.hashKey = m.Sum(nil)
	return c, nil
}

// hash names a credential row. Without a key only empty secrets exist and
// all share the zero hash.
func (c *crypter) hash(cr Credential) ([8]byte, error) {
	var h [8]byte
	if cr.AccessKeySecret == "" {
		return h, nil
	}
	if c.aead == nil {
		return h, ErrNoKey
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.hashes[cr]; ok {
		return h, nil
	}
	m := hmac.New(sha256.New, c.hashKey)
	m.Write([]byte(cr.AccessKeyID))
	m.Write([]byte{0})
	m.Write([]byte(cr.AccessKeySecret))
	copy(h[:], m.Sum(nil))
	if len(c.hashes) > 1<<16 { // bound the cache; it only saves HMACs
		clear(c.hashes)
	}
	c.hashes[cr] = h
	return h, nil
}

// Credential row value: version(1)=1 | sealed(1) | nonce(12) | AES-GCM(secret).
// The row key is the associated data, so a row copied under another key
// does not decrypt.
func (c *crypter) seal(key []byte, secret string) ([]byte, error) {
	if secret == "" {
		return []byte{1, 0}, nil
	}
	if c.aead == nil {
		return nil, ErrNoKey
	}
	out := make([]byte, 2+c.aead.NonceSize(), 2+c.aead.NonceSize()+len(secret)+c.aead.Overhead())
	out[0], out[1] = 1, 1
	if _, err := rand.Read(out[2:]); err != nil {
		return nil, err
	}
	return c.aead.Seal(out, out[2:], []byte(secret), key), nil
}

func (c *crypter) open(key, row []byte) (string, error) {
	if len(row) < 2 || row[0] != 1 {
		return "", fmt.Errorf("credential row: %w", ErrCorrupt)
	}
	if row[1] == 0 {
		return "", nil
	}
	if c.aead == nil {
		return "", ErrNoKey
	}
	ns := c.aead.NonceSize()
	if len(row) < 2+ns {
		return "", fmt.Errorf("credential row: %w", ErrCorrupt)
	}
	pt, err := c.aead.Open(nil, row[2:2+ns], row[2+ns:], key)
	if err != nil {
		return "", fmt.Errorf("cannot decrypt credential (wrong key?): %w", err)
	}
	return string(pt), nil
}
