package users

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/slsrelay/slsrelay/wal"
)

// sealedPrefix marks a sealed secret (in secret_sealed or a secret_file).
const sealedPrefix = "slsrelay-sealed:v1:"

// sealLabel binds a sealed secret to its AccessKeyId: moved under another
// id it does not open.
func sealLabel(akid string) string { return "slsrelay held AccessKey " + akid }

// SealSecret seals an AccessKey secret with the WAL's encryption key, for
// secret_sealed or a secret_file.
func SealSecret(walKey []byte, accessKeyID, secret string) (string, error) {
	b, err := wal.SealSecret(walKey, sealLabel(accessKeyID), secret)
	if err != nil {
		return "", fmt.Errorf("cannot seal the secret of %s: %w", accessKeyID, err)
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(b), nil
}

func openSealed(walKey []byte, accessKeyID, text string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(text, sealedPrefix))
	if err != nil {
		return "", errors.New("sealed secret is not base64")
	}
	if len(walKey) == 0 {
		return "", errors.New("the secret is sealed and no WAL encryption key is configured")
	}
	return wal.OpenSecret(walKey, sealLabel(accessKeyID), b)
}

// resolve reads the held key's AccessKeyId and secret. Errors name the
// variable or file, never the value.
func (k HeldKey) resolve(o *Options) (wal.Credential, error) {
	id := k.AccessKeyID
	if k.AccessKeyIDEnv != "" {
		if id != "" {
			return wal.Credential{}, errors.New("both access_key_id and access_key_id_env are set")
		}
		v, ok := o.lookupEnv(k.AccessKeyIDEnv)
		if !ok || v == "" {
			return wal.Credential{}, fmt.Errorf("environment variable %s is not set", k.AccessKeyIDEnv)
		}
		id = v
	}
	if id == "" {
		return wal.Credential{}, errors.New("no access_key_id")
	}
	n := 0
	for _, s := range []string{k.SecretEnv, k.SecretFile, k.SecretSealed} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return wal.Credential{}, errors.New("exactly one of secret_env, secret_file, secret_sealed must be set")
	}
	var secret string
	switch {
	case k.SecretEnv != "":
		v, ok := o.lookupEnv(k.SecretEnv)
		if !ok || v == "" {
			return wal.Credential{}, fmt.Errorf("environment variable %s is not set", k.SecretEnv)
		}
		secret = v
	case k.SecretFile != "":
		b, err := os.ReadFile(k.SecretFile)
		if err != nil {
			return wal.Credential{}, fmt.Errorf("cannot read secret_file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
		if strings.HasPrefix(secret, sealedPrefix) {
			if secret, err = openSealed(o.EncryptionKey, id, secret); err != nil {
				return wal.Credential{}, fmt.Errorf("secret_file %q: %w", k.SecretFile, err)
			}
		}
	default:
		if !strings.HasPrefix(k.SecretSealed, sealedPrefix) {
			return wal.Credential{}, fmt.Errorf("secret_sealed does not start with %s", sealedPrefix)
		}
		var err error
		if secret, err = openSealed(o.EncryptionKey, id, k.SecretSealed); err != nil {
			return wal.Credential{}, fmt.Errorf("secret_sealed: %w", err)
		}
	}
	if secret == "" {
		return wal.Credential{}, errors.New("empty secret")
	}
	return wal.Credential{AccessKeyID: id, AccessKeySecret: secret}, nil
}
