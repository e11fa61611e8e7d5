package wal

import "errors"

// SealSecret encrypts secret with key (an Options.EncryptionKey) exactly as
// the WAL seals the AccessKey secrets of its credential rows (AES-256-GCM,
// random nonce, see crypter.seal), with label as the authenticated data: a
// sealed value copied under another label does not open. It serves the
// relay-held AccessKeys of relay users (engine/users), which are kept
// sealed at rest with the WAL's key.
func SealSecret(key []byte, label, secret string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("wal: empty secret")
	}
	if len(key) == 0 {
		return nil, ErrNoKey
	}
	c, err := newCrypter(key)
	if err != nil {
		return nil, err
	}
	return c.seal([]byte(label), secret)
}

// OpenSecret decrypts what SealSecret sealed under the same key and label.
func OpenSecret(key []byte, label string, sealed []byte) (string, error) {
	c, err := newCrypter(key)
	if err != nil {
		return "", err
	}
	return c.open([]byte(label), sealed)
}
