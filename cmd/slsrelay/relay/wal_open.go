package relay

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/slsrelay/slsrelay/wal"
)

// OpenWAL opens the WAL cfg names, with the key that encrypts stored
// AccessKeySecrets. The admin commands (dlq, wal status) open it this way
// too, while the relay is stopped.
func OpenWAL(cfg *Config, log *slog.Logger) (*wal.WAL, error) {
	opts := cfg.WAL.Options
	var err error
	if opts.Sync, err = wal.ParseSyncPolicy(cfg.WAL.SyncMode); err != nil {
		return nil, fmt.Errorf("wal.sync: %w", err)
	}
	if opts.EncryptionKey, err = walKey(cfg, log); err != nil {
		return nil, err
	}
	opts.Logger = log
	return wal.Open(cfg.WALDir(), opts)
}

// walKey loads the key that encrypts AccessKeySecrets in the WAL, or makes
// one beside the data on first start when none is configured.
func walKey(cfg *Config, log *slog.Logger) ([]byte, error) {
	switch {
	case cfg.WAL.EncryptionKeyFile != "":
		k, err := wal.LoadKeyFile(cfg.WAL.EncryptionKeyFile)
		if err != nil {
			return nil, fmt.Errorf("wal.encryption_key_file: %w", err)
		}
		return k, nil
	case cfg.WAL.EncryptionKeyEnv != "":
		k, err := wal.KeyFromEnv(cfg.WAL.EncryptionKeyEnv)
		if err != nil {
			return nil, fmt.Errorf("wal.encryption_key_env: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(cfg.DataDir, "wal.key")
	k, err := wal.LoadKeyFile(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot use generated WAL key %q: %w", path, err)
	}
	raw := make([]byte, wal.KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data_dir %q: %w", cfg.DataDir, err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(raw)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write WAL key %q: %w", path, err)
	}
	log.Warn("generated a WAL encryption key beside the data; set wal.encryption_key_file to keep it elsewhere", "path", path)
	return raw, nil
}
