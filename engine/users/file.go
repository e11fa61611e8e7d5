package users

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// File is the users file's content (see the package documentation). The
// daemon's `auth` configuration section has the same shape.
type File struct {
	Keys  map[string]HeldKey `yaml:"keys,omitempty"`
	Users map[string]User    `yaml:"users,omitempty"`
}

// HeldKey names where an AccessKey the relay holds comes from.
type HeldKey struct {
	AccessKeyID    string `yaml:"access_key_id,omitempty"`
	AccessKeyIDEnv string `yaml:"access_key_id_env,omitempty"`
	SecretEnv      string `yaml:"secret_env,omitempty"`
	SecretFile     string `yaml:"secret_file,omitempty"`
	SecretSealed   string `yaml:"secret_sealed,omitempty"`
}

// User is one relay user's entry.
type User struct {
	Project     string       `yaml:"project"`
	Key         string       `yaml:"key"`
	Topics      []string     `yaml:"topics"`
	SCRAMSHA256 *SCRAM       `yaml:"scram_sha_256,omitempty"`
	SCRAMSHA512 *SCRAM       `yaml:"scram_sha_512,omitempty"`
	Certificate *Certificate `yaml:"certificate,omitempty"`
}

// SCRAM is a stored SCRAM credential, base64 (standard, padded).
type SCRAM struct {
	Salt       string `yaml:"salt"`
	Iterations int    `yaml:"iterations"`
	StoredKey  string `yaml:"stored_key"`
	ServerKey  string `yaml:"server_key"`
}

// Certificate is how a verified client certificate names the user.
type Certificate struct {
	Subject string   `yaml:"subject,omitempty"`
	SAN     []string `yaml:"san,omitempty"`
}

// ReadFile reads a users file; a missing file is an empty one, so that
// `user add` can start it.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &File{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read users file %q: %w", path, err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("cannot parse users file %q: %w", path, err)
	}
	return &f, nil
}

// WriteFile replaces path with f atomically (a temporary file renamed over
// it), readable by its owner only.
func WriteFile(path string, f *File) error {
	var buf bytes.Buffer
	buf.WriteString("# slsrelay users file, written by `slsrelay user`. No password or secret is stored here in the clear.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("cannot encode users file: %w", err)
	}
	b := buf.Bytes()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".users-*.yaml")
	if err != nil {
		return fmt.Errorf("cannot write users file %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write users file %q: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write users file %q: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write users file %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write users file %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot replace users file %q: %w", path, err)
	}
	return nil
}
