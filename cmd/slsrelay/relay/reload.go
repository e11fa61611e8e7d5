package relay

import (
	"log/slog"
	"reflect"
)

// Reload applies what a SIGHUP may change without dropping connections:
// the log level (through Deps.Level), TLS certificates (re-read from their
// files), the throttle's quotas and the relay users (the auth section's
// inline keys and users and its users_file, re-read). Other changes need
// a restart; Reload names them in the log and returns their top-level
// keys.
func (r *Relay) Reload(cfg *Config) (restartOnly []string) {
	if r.deps.Level != nil {
		var level slog.Level
		_ = level.UnmarshalText([]byte(cfg.Log.Level))
		r.deps.Level.Set(level)
	}
	for _, c := range r.certs {
		if err := c.Reload(); err != nil {
			r.log.Error("reload: TLS files that could not be read are kept as they were", "err", err)
		}
	}
	if r.thr != nil {
		r.thr.SetOptions(cfg.Throttle)
	}
	if r.users != nil {
		// The auth section and its users file are read again; a user
		// gone from them (or changed) loses its connections. A section
		// removed leaves no users. One that does not load keeps the users
		// as they were.
		if err := cfg.Auth.Reopen(r.users); err != nil {
			r.log.Error("reload: relay users kept as they were", "err", err)
		} else if n := r.server.DropRevokedUsers(); n > 0 {
			r.log.Info("reload: closed the connections of removed relay users", "connections", n)
		}
	}
	r.log.Info("reloaded", "log_level", cfg.Log.Level)
	restartOnly = RestartOnlyChanges(r.cfg, cfg)
	if len(restartOnly) > 0 {
		r.log.Warn("reload: these changes take effect at the next restart", "keys", restartOnly)
	}
	return restartOnly
}

// RestartOnlyChanges names the top-level sections that differ between two
// configs and that a reload does not apply.
func RestartOnlyChanges(old, cur *Config) []string {
	var changed []string
	f := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			changed = append(changed, key)
		}
	}
	f("node_id", old.NodeID, cur.NodeID)
	f("data_dir", old.DataDir, cur.DataDir)
	f("log.format", old.Log.Format, cur.Log.Format)
	f("listeners", old.Listeners, cur.Listeners)
	f("limits", old.Limits, cur.Limits)
	f("wal", old.WAL, cur.WAL)
	f("sls", old.SLS, cur.SLS)
	f("catalog", old.Catalog, cur.Catalog)
	f("admin", old.Admin, cur.Admin)
	// A reload applies the auth section (Relay.Reload), except where
	// there was none at start: the engine was built without users.
	if old.Auth == nil && cur.Auth != nil {
		changed = append(changed, "auth")
	}
	return changed
}
