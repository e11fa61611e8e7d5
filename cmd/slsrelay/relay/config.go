package relay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is slsrelay's configuration file. Every key is documented in
// configs/reference.yaml; unknown keys are errors.
type Config struct {
	// NodeID is this relay's broker id in Metadata.
	NodeID int32 `yaml:"node_id"`
	// DataDir holds the WAL and the generated TLS files.
	DataDir   string           `yaml:"data_dir"`
	Log       LogConfig        `yaml:"log"`
	Listeners []ListenerConfig `yaml:"listeners"`
	Limits    LimitsConfig     `yaml:"limits"`
	WAL       WALConfig        `yaml:"wal"`
	Throttle  ThrottleConfig   `yaml:"throttle"`
	Admin     AdminConfig      `yaml:"admin"`
	SLS       SLSConfig        `yaml:"sls"`
	// Catalog, when static, serves fixed projects without asking SLS
	// (offline trials); by default SLS is the catalog.
	Catalog CatalogConfig `yaml:"catalog"`
}

type WALConfig struct {
	// Dir defaults to <data_dir>/wal.
	Dir          string        `yaml:"dir"`
	Sync         string        `yaml:"sync"` // batch (default) or interval
	SyncInterval time.Duration `yaml:"sync_interval"`
	MaxDiskBytes int64         `yaml:"max_disk_bytes"`
	// HighWatermark is the share of max_disk_bytes above which producers
	// are slowed down.
	HighWatermark float64 `yaml:"high_watermark"`
	// EncryptionKeyFile / EncryptionKeyEnv hold the AES-256 key that
	// encrypts stored AccessKeySecrets. Without either, a key is generated
	// at <data_dir>/wal.key on first start.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	EncryptionKeyEnv  string `yaml:"encryption_key_env"`
}

// AdminConfig: the HTTP listener for /metrics, /healthz, /readyz.
type AdminConfig struct {
	// Listen is host:port; empty: no admin listener.
	Listen string `yaml:"listen"`
	// Pprof serves /debug/pprof too.
	Pprof bool `yaml:"pprof"`
}

// ThrottleConfig: when producers are slowed with throttle_time_ms.
type ThrottleConfig struct {
	SoftBacklogBytes   int64         `yaml:"soft_backlog_bytes"`
	SoftBacklogAge     time.Duration `yaml:"soft_backlog_age"`
	MaxThrottle        time.Duration `yaml:"max_throttle"`
	ProjectBytesPerSec int64         `yaml:"project_bytes_per_sec"`
}

type SLSConfig struct {
	// Endpoint is the SLS endpoint, e.g. cn-hangzhou-intranet.log.aliyuncs.com.
	Endpoint string `yaml:"endpoint"`
	// StandIn runs the local SLS stand-in in-process and sends there.
	StandIn          *StandInConfig `yaml:"stand_in"`
	Compression      string         `yaml:"compression"` // lz4 (default) or zstd
	RetryInterval    time.Duration  `yaml:"retry_interval"`
	Linger           time.Duration  `yaml:"linger"`
	MaxLogGroupBytes int            `yaml:"max_log_group_bytes"`
	MaxLogGroupLogs  int            `yaml:"max_log_group_logs"`
	Source           string         `yaml:"source"`
	Topic            string         `yaml:"topic"`
	KeyField         string         `yaml:"key_field"`
	HeadersAsFields  bool           `yaml:"headers_as_fields"`
	HeaderPrefix     string         `yaml:"header_prefix"`
	ShardRefresh     time.Duration  `yaml:"shard_refresh"`
	// ShardBytesPerSec / ShardRequestsPerSec pace each shard's writer.
	ShardBytesPerSec    int `yaml:"shard_bytes_per_sec"`
	ShardRequestsPerSec int `yaml:"shard_requests_per_sec"`
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
	Name       string `yaml:"name"`
	Protocol   string `yaml:"protocol"`
	Bind       string `yaml:"bind"`
	Advertised string `yaml:"advertised"`
	// For PLAINTEXT listeners: who unauthenticated clients write as.
	Project         string     `yaml:"project"`
	AccessKeyID     string     `yaml:"access_key_id"`
	AccessKeySecret string     `yaml:"access_key_secret"`
	TLS             *TLSConfig `yaml:"tls"`
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

type LimitsConfig struct {
	MaxRequestBytes     int           `yaml:"max_request_bytes"`
	MaxSASLRequestBytes int           `yaml:"max_sasl_request_bytes"`
	MaxMessageBytes     int           `yaml:"max_message_bytes"`
	MaxInFlightPerConn  int           `yaml:"max_in_flight_per_conn"`
	MaxBufferedBytes    int64         `yaml:"max_buffered_bytes"`
	IdleTimeout         time.Duration `yaml:"idle_timeout"`
	PartialFrameTimeout time.Duration `yaml:"partial_frame_timeout"`
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

// envRef is ${NAME}: the only expansion done, so a '$' elsewhere in a
// value stays as written.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnvNodes replaces ${NAME} in scalar values (not in keys or
// comments) with the environment variable's value; an unset variable is an
// error rather than an empty secret.
func expandEnvNodes(n *yaml.Node) error {
	var missing []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			v := envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
				name := envRef.FindStringSubmatch(m)[1]
				v, ok := os.LookupEnv(name)
				if !ok {
					missing = append(missing, name)
				}
				return v
			})
			if v != n.Value {
				n.Value = v
				// A plain `${N}` was read as a string; let the expanded
				// value be typed anew, so `node_id: ${POD_INDEX}` is a number.
				if n.Style == 0 && n.Tag == "!!str" {
					n.Tag = ""
				}
			}
			return
		}
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				continue // a key
			}
			walk(c)
		}
	}
	walk(n)
	if len(missing) > 0 {
		return fmt.Errorf("environment variables not set: %v", missing)
	}
	return nil
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
		if t := c.Listeners[i].TLS; t != nil && t.SelfSigned && len(t.SelfSignedHosts) == 0 {
			t.SelfSignedHosts = []string{"localhost", "127.0.0.1"}
		}
	}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("config %q: %w", path, err)
	}
	return &c, nil
}

// check reports the first problem with its key path.
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
	if len(c.Listeners) == 0 {
		return errors.New("listeners: at least one listener is needed")
	}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		if l.Bind == "" {
			return fmt.Errorf("%s.bind: missing (host:port)", key)
		}
		switch l.Protocol {
		case "PLAINTEXT":
			if l.Project != "" && (l.AccessKeyID == "" || l.AccessKeySecret == "") {
				return fmt.Errorf("%s: project %q needs access_key_id and access_key_secret", key, l.Project)
			}
		case "SASL_PLAINTEXT":
		case "SASL_SSL":
			t := l.TLS
			switch {
			case t == nil:
				return fmt.Errorf("%s.tls: SASL_SSL needs tls.cert and tls.key (or tls.self_signed: true)", key)
			case t.Cert == "" && t.Key == "" && !t.SelfSigned:
				return fmt.Errorf("%s.tls: cert and key are missing (or set self_signed: true)", key)
			case (t.Cert == "") != (t.Key == ""):
				return fmt.Errorf("%s.tls: cert and key go together", key)
			}
			for _, f := range []struct{ key, path string }{{"cert", t.Cert}, {"key", t.Key}, {"client_ca", t.ClientCA}} {
				if f.path == "" {
					continue
				}
				if _, err := os.Stat(f.path); err != nil {
					return fmt.Errorf("%s.tls.%s: %w", key, f.key, err)
				}
			}
		case "":
			return fmt.Errorf("%s.protocol: missing (PLAINTEXT, SASL_PLAINTEXT or SASL_SSL)", key)
		default:
			return fmt.Errorf("%s.protocol: %q is not one of PLAINTEXT, SASL_PLAINTEXT, SASL_SSL", key, l.Protocol)
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
	switch c.WAL.Sync {
	case "", "batch", "interval":
	default:
		return fmt.Errorf("wal.sync: %q is not one of batch, interval", c.WAL.Sync)
	}
	if c.WAL.MaxDiskBytes < 0 {
		return errors.New("wal.max_disk_bytes: must not be negative")
	}
	if h := c.WAL.HighWatermark; h != 0 && (h <= 0 || h >= 1) {
		return fmt.Errorf("wal.high_watermark: %v is not between 0 and 1", h)
	}
	switch c.SLS.Compression {
	case "", "lz4", "zstd":
	default:
		return fmt.Errorf("sls.compression: %q is not one of lz4, zstd", c.SLS.Compression)
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
