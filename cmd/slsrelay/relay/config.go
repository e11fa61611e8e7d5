package relay

import (
	"slices"

	"errors"
	"fmt"
	"github.com/slsrelay/slsrelay/engine/users"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/shardwriter"
	"github.com/slsrelay/slsrelay/wal"
)

// Config is slsrelay's configuration file. Every key is documented in
// configs/reference.yaml; unknown keys are errors.
//
// The sections that configure one package are that package's options,
// which carry their yaml names and defaults (engine.Options under limits,
// engine.ThrottleOptions under throttle, wal.Options under wal,
// shardwriter.Options under sls); the package checks them when the relay
// is built. Check here covers only what no package sees: rules that span
// sections or keys that only the file has.
type Config struct {
	// NodeID is this relay's broker id in Metadata (engine.Options.NodeID).
	NodeID int32 `yaml:"node_id"`
	// BrokerID is the one broker Metadata names (engine.Options.BrokerID):
	// nodes behind one shared address all name the same. Default node_id.
	BrokerID int32 `yaml:"broker_id"`
	// DataDir holds the WAL and the generated TLS files.
	DataDir   string           `yaml:"data_dir"`
	Log       LogConfig        `yaml:"log"`
	Listeners []ListenerConfig `yaml:"listeners"`
	// Limits are the front end's limits: the fields of engine.Options
	// that have yaml names; the rest the assembly sets.
	Limits   engine.Options         `yaml:"limits"`
	WAL      WALConfig              `yaml:"wal"`
	Throttle engine.ThrottleOptions `yaml:"throttle"`
	Admin    AdminConfig            `yaml:"admin"`
	SLS      SLSConfig              `yaml:"sls"`
	// Catalog, when static, serves fixed projects without asking SLS
	// which exist; by default SLS is the catalog. Delivery is the same.
	Catalog CatalogConfig `yaml:"catalog"`
	// Auth holds the relay users (SCRAM, PLAIN on TLS, client
	// certificates) and the AccessKeys the relay holds for them; nil: the
	// shippers log in with SLS's own PLAIN (project, AKID#AKSECRET).
	Auth *users.AuthConfig `yaml:"auth"`
}

// WALConfig is wal.Options plus what the file says differently: where the
// WAL lives, the sync policy's spelling and where its key comes from.
type WALConfig struct {
	wal.Options `yaml:",inline"`
	// Dir defaults to <data_dir>/wal.
	Dir string `yaml:"dir"`
	// SyncMode is Options.Sync as the file spells it (batch, the default,
	// or interval); Check and OpenWAL read it with wal.ParseSyncPolicy.
	SyncMode string `yaml:"sync"`
	// EncryptionKeyFile / EncryptionKeyEnv hold the AES-256 key that
	// encrypts stored AccessKeySecrets (Options.EncryptionKey). Without
	// either, a key is generated at <data_dir>/wal.key on first start.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	EncryptionKeyEnv  string `yaml:"encryption_key_env"`
}

// AdminConfig: the HTTP listener for /metrics, /healthz, /readyz, and the
// local control socket.
type AdminConfig struct {
	// Listen is host:port; empty: no admin listener.
	Listen string `yaml:"listen"`
	// Pprof serves /debug/pprof too.
	Pprof bool `yaml:"pprof"`
	// ControlSocket is the Unix socket `slsrelay dlq` and `wal status`
	// reach the running relay on (control.go): a path, empty for
	// <data_dir>/control.sock, or "off" for none.
	ControlSocket string `yaml:"control_socket"`
}

// ControlSocketOff is admin.control_socket's value for no control socket.
const ControlSocketOff = "off"

// ControlSocket is where the running relay's control socket is: "" when
// admin.control_socket is off.
func (c *Config) ControlSocket() string {
	switch c.Admin.ControlSocket {
	case ControlSocketOff:
		return ""
	case "":
		return filepath.Join(c.DataDir, "control.sock")
	}
	return c.Admin.ControlSocket
}

// SLSConfig is shardwriter.Options plus the stand-in and the catalog's
// shard refresh.
type SLSConfig struct {
	shardwriter.Options `yaml:",inline"`
	// StandIn runs the local SLS stand-in in-process and sends there.
	StandIn *StandInConfig `yaml:"stand_in"`
	// ShardRefresh is shardwriter.CatalogOptions.ShardRefresh.
	ShardRefresh time.Duration `yaml:"shard_refresh"`
}

type StandInConfig struct {
	// Listen is where its SLS API listens, for a person or the SDK.
	Listen string `yaml:"listen"`
	// Config is a stand-in config file; default: the built-in demo
	// (test-project-1, demo-akid/demo-aksecret).
	Config string `yaml:"config"`
}

type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

type ListenerConfig struct {
	engine.ListenerOptions `yaml:",inline"`
	// For PLAINTEXT listeners: who unauthenticated clients write as
	// (ListenerOptions.Principal).
	Project         string `yaml:"project"`
	AccessKeyID     string `yaml:"access_key_id"`
	AccessKeySecret string `yaml:"access_key_secret"`
	// TLSFiles are where a SASL_SSL listener's certificate comes from
	// (ListenerOptions.TLS is built from them).
	TLSFiles *TLSConfig `yaml:"tls"`
}

type TLSConfig struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"`
	// SelfSigned generates a CA and a certificate for SelfSignedHosts under
	// <data_dir>/tls on first start when Cert and Key are empty.
	SelfSigned      bool     `yaml:"self_signed"`
	SelfSignedHosts []string `yaml:"self_signed_hosts"`
}

type CatalogConfig struct {
	// Static serves fixed projects and keys from the file (no SLS).
	Static *StaticCatalogConfig `yaml:"static"`
}

type StaticCatalogConfig struct {
	// Projects maps project → logstore → partition count.
	Projects map[string]map[string]int32 `yaml:"projects"`
	// AccessKeys maps AccessKeyId → AccessKeySecret.
	AccessKeys map[string]string `yaml:"access_keys"`
}

// loadConfig reads path strictly: unknown keys and a second document are
// errors. Paths in the file are relative to the working directory.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config %q: %w", path, err)
	}
	return ParseConfig(path, raw)
}

func ParseConfig(path string, raw []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("config %q: %w", path, err)
	}
	if err := checkKeys(&root, reflect.TypeOf(Config{}), ""); err != nil {
		return nil, fmt.Errorf("config %q: %w", path, err)
	}
	if err := expandEnvNodes(&root); err != nil {
		return nil, fmt.Errorf("config %q: %w", path, err)
	}
	var c Config
	if len(root.Content) > 0 {
		if err := root.Decode(&c); err != nil {
			return nil, fmt.Errorf("config %q: %w", path, err)
		}
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	for i := range c.Listeners {
		if t := c.Listeners[i].TLSFiles; t != nil && t.SelfSigned && len(t.SelfSignedHosts) == 0 {
			t.SelfSignedHosts = []string{"localhost", "127.0.0.1"}
		}
	}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("config %q: %w", path, err)
	}
	return &c, nil
}

// Check reports the first problem with its key path. It checks what only
// the file has (log, listeners' TLS files and keys, where SLS is) and what
// spans sections; each package checks its own options when New builds the
// relay (engine: protocols, binds, limits; wal: high_watermark,
// max_disk_bytes; shardwriter: compression), so no rule is written twice.
// wal.sync is parsed by the WAL's own ParseSyncPolicy.
func (c *Config) Check() error {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is not one of text, json", c.Log.Format)
	}
	for i, l := range c.Listeners {
		if err := l.check(); err != nil {
			return fmt.Errorf("listeners[%d]%w", i, err)
		}
	}
	// catalog.static only replaces the catalog: records are still
	// delivered, so somewhere to deliver them is needed with it too.
	if c.SLS.Endpoint == "" && c.SLS.StandIn == nil {
		return errors.New("sls: set sls.endpoint (or sls.stand_in for a trial without SLS)")
	}
	if c.SLS.Endpoint != "" && c.SLS.StandIn != nil {
		return errors.New("sls: endpoint and stand_in exclude each other")
	}
	if _, err := wal.ParseSyncPolicy(c.WAL.SyncMode); err != nil {
		return fmt.Errorf("wal.sync: %w", err)
	}
	if c.Auth == nil {
		for i, l := range c.Listeners {
			if len(l.Mechanisms) > 0 && !slices.Equal(l.Mechanisms, []string{engine.PLAIN}) || l.Plain != "" && l.Plain != engine.PlainAccessKeys || l.Protocol == engine.SSL {
				return fmt.Errorf("listeners[%d] (%s): relay users (SCRAM, PLAIN against users, SSL certificates) need an auth section", i, l.Name)
			}
		}
	}
	return nil
}

// check covers what the engine does not see of a listener: the principal
// of a PLAINTEXT listener and the TLS files of a SASL_SSL one. Its errors
// start with the key below the listener (".tls: …").
func (l ListenerConfig) check() error {
	switch l.Protocol {
	case engine.Plaintext:
		if l.Project != "" && (l.AccessKeyID == "" || l.AccessKeySecret == "") {
			return fmt.Errorf(": project %q needs access_key_id and access_key_secret", l.Project)
		}
	case engine.SASLSSL, engine.SSL:
		t := l.TLSFiles
		switch {
		case t == nil:
			return fmt.Errorf(".tls: %s needs tls.cert and tls.key (or tls.self_signed: true)", l.Protocol)
		case t.Cert == "" && t.Key == "" && !t.SelfSigned:
			return errors.New(".tls: cert and key are missing (or set self_signed: true)")
		case (t.Cert == "") != (t.Key == ""):
			return errors.New(".tls: cert and key go together")
		}
		for _, f := range []struct{ key, path string }{{"cert", t.Cert}, {"key", t.Key}, {"client_ca", t.ClientCA}} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				return fmt.Errorf(".tls.%s: %w", f.key, err)
			}
		}
	}
	return nil
}

func (c *Config) TLSDir() string { return filepath.Join(c.DataDir, "tls") }

// WALDir is where the WAL lives: wal.dir, or <data_dir>/wal.
func (c *Config) WALDir() string {
	if c.WAL.Dir != "" {
		return c.WAL.Dir
	}
	return filepath.Join(c.DataDir, "wal")
}
