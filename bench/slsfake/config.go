package slsfake

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults applied by Config.normalize when a field is left zero.
const (
	// DefaultEndpointHost is the host name given to the SDK as its endpoint
	// (the SDK prepends "<project>."). Nothing resolves it: the dialer from
	// HTTPClient/NewHTTPClient sends it to the stand-in.
	DefaultEndpointHost = "slsfake.local"
	// DefaultMaxStoredBytes bounds the memory the stand-in keeps received
	// LogGroups in (decompressed protobuf bytes).
	DefaultMaxStoredBytes = 256 << 20
	// DefaultWriteBytesPerSec is SLS's per-shard write quota (raw bytes).
	DefaultWriteBytesPerSec = 5 << 20
	// DefaultWriteRequestsPerSec is SLS's per-shard write quota (requests).
	DefaultWriteRequestsPerSec = 500
	// DefaultMaxBodyRawBytes is the largest PutLogs body (uncompressed) SLS
	// accepts.
	DefaultMaxBodyRawBytes = 10 << 20
	// DefaultTimeWindow is how far the request Date may be from the server
	// clock before SLS answers RequestTimeExpired.
	DefaultTimeWindow = 15 * time.Minute
)

// Shard status values, as SLS spells them in ListShards.
const (
	StatusReadWrite = "readwrite"
	StatusReadOnly  = "readonly"
)

// Config describes what the stand-in serves. The zero value of most fields
// means "the default"; see each field. A Config is plain data: New copies
// what it needs, so changing a Config after New has no effect.
type Config struct {
	// EndpointHost is the endpoint host name the SDK is given (default
	// DefaultEndpointHost); Endpoint() reports it. The project is the first
	// label of the request's Host header, so clients may use another name,
	// except for ListProject, which is recognized by the bare configured
	// name (or an IP address) in Host.
	EndpointHost string `yaml:"endpointHost"`
	// Region is reported by GetProject and, when set, must match the region
	// of v4 signatures (any region is accepted when empty).
	Region string `yaml:"region,omitempty"`
	// RequireV4 refuses v1 (HMAC-SHA1) signatures with 401 Unauthorized, as
	// a region that takes only v4 does (see auth.go requireV4). Region
	// must be set with it: v4 signatures name the region.
	RequireV4 bool `yaml:"requireV4,omitempty"`
	// Projects, with their logstores and shard layouts.
	Projects []ProjectConfig `yaml:"projects"`
	// AccessKeys that may sign requests, with per-project permissions.
	AccessKeys []AccessKeyConfig `yaml:"accessKeys"`
	// MaxStoredBytes bounds what is kept of received data; the oldest
	// LogGroups are dropped (and counted in Stats.DroppedGroups) past it.
	// 0 means DefaultMaxStoredBytes; negative means unbounded.
	MaxStoredBytes int64 `yaml:"maxStoredBytes,omitempty"`
	// MaxBodyRawBytes bounds one PutLogs body, uncompressed (0 means
	// DefaultMaxBodyRawBytes); larger bodies get 400 PostBodyTooLarge.
	MaxBodyRawBytes int64 `yaml:"maxBodyRawBytes,omitempty"`
	// TimeWindow is the accepted distance between the request time and the
	// server clock (0 means DefaultTimeWindow; negative disables the check).
	TimeWindow time.Duration `yaml:"timeWindow,omitempty"`
	// DefaultQuota is the per-shard quota of logstores without their own
	// Quota; nil means SLS's per-shard limits (DefaultWriteBytesPerSec,
	// DefaultWriteRequestsPerSec), which SLS documents as soft: exceeding
	// them is admitted and counted (Stats.ShardQuotaOverruns). A Quota
	// given here, per logstore or through SetQuota is enforced hard (403)
	// unless its Soft is set. See quota.go.
	DefaultQuota *Quota `yaml:"defaultQuota,omitempty"`
	// QuotaErrorCode is the errorCode of a hard per-shard quota rejection
	// (403). Default "ShardWriteQuotaExceed", SLS's shard-level code.
	QuotaErrorCode string `yaml:"quotaErrorCode,omitempty"`
	// ProjectQuota is every project's hard write quota, unless the project
	// has its own; nil means SLS's defaults (100 GB and 600,000 requests a
	// minute). Exceeding it is 403 WriteQuotaExceed.
	ProjectQuota *ProjectQuota `yaml:"projectQuota,omitempty"`
	// MaxLogGroupBytes bounds one LogGroup, raw (0 means
	// DefaultMaxLogGroupBytes, SLS's 5 MB); larger gets 400 PostBodyTooLarge.
	MaxLogGroupBytes int64 `yaml:"maxLogGroupBytes,omitempty"`
	// MaxLogsPerGroup bounds the logs of one LogGroup (0 means
	// DefaultMaxLogsPerGroup, 4096); more gets 400 PostBodyTooLarge.
	MaxLogsPerGroup int `yaml:"maxLogsPerGroup,omitempty"`
	// StrictKeys applies the data model's key syntax too: only letters,
	// digits and underscores, no leading digit, no reserved name inside a
	// key (400 InvalidKey). Off by default: SLS's own pages for Beats,
	// Logstash and Fluentd ship keys such as @timestamp and log.file.path
	// into SLS, so live SLS evidently stores them; see CONTRACT.md. Empty,
	// over-long, non-UTF-8 and exactly-reserved keys are refused either way.
	StrictKeys bool `yaml:"strictKeys,omitempty"`
	// AcceptOutOfRangeTime stores logs whose time is outside SLS's window
	// ([-7 days, +15 min] of the server clock) and counts them in
	// Stats.OutOfRangeGroups, instead of refusing them as SLS does (the
	// default).
	AcceptOutOfRangeTime bool `yaml:"acceptOutOfRangeTime,omitempty"`
	// OutOfRangeTimeCode is the errorCode (400) for a log time outside the
	// window: default "PostBodyInvalid", as SLS's PutLogs reference lists
	// it ("The post data time is out of range"); "InvalidTimestamp" is the
	// other reading of that table (see validate.go).
	OutOfRangeTimeCode string `yaml:"outOfRangeTimeCode,omitempty"`
	// Faults active from the start (see Fault).
	Faults []Fault `yaml:"faults,omitempty"`
}

// ProjectConfig is one SLS project.
type ProjectConfig struct {
	Name string `yaml:"name"`
	// State is normal (the default) or forbidden (every request is
	// answered 403 ProjectForbidden); Server.SetProjectState changes it.
	State       ProjectState     `yaml:"state,omitempty"`
	Description string           `yaml:"description,omitempty"`
	Logstores   []LogstoreConfig `yaml:"logstores"`
	// Quota is this project's hard write quota; nil means
	// Config.ProjectQuota.
	Quota *ProjectQuota `yaml:"quota,omitempty"`
}

// LogstoreConfig is one logstore and its shard layout.
type LogstoreConfig struct {
	Name string `yaml:"name"`
	// TTL in days, reported by GetLogStore (default 30).
	TTL int `yaml:"ttl,omitempty"`
	// ShardCount makes that many readwrite shards, ids 0..n-1, splitting the
	// MD5 key space evenly. Ignored when Shards is set. Default 2.
	ShardCount int `yaml:"shardCount,omitempty"`
	// Shards is an explicit layout. Keys are 32 lowercase hex digits; the
	// last shard ends at "ffffffffffffffffffffffffffffffff".
	Shards []ShardConfig `yaml:"shards,omitempty"`
	// Quota per shard; nil means Config.DefaultQuota.
	Quota *Quota `yaml:"quota,omitempty"`
}

// ShardConfig is one shard of an explicit layout.
type ShardConfig struct {
	ID                int    `yaml:"id"`
	Status            string `yaml:"status,omitempty"` // readwrite (default) or readonly
	InclusiveBeginKey string `yaml:"inclusiveBeginKey"`
	ExclusiveEndKey   string `yaml:"exclusiveEndKey"`
}

// Quota is a per-shard write quota; a zero field turns that limit off.
type Quota struct {
	BytesPerSec    int64 `yaml:"bytesPerSec"`    // raw (uncompressed) bytes
	RequestsPerSec int64 `yaml:"requestsPerSec"` // PutLogs requests
	// Soft admits writes past the quota (counted in
	// Stats.ShardQuotaOverruns), as SLS treats its per-shard limits;
	// otherwise they get 403 QuotaErrorCode.
	Soft bool `yaml:"soft,omitempty"`
}

// AccessKeyConfig is an AccessKey pair and what it may do.
type AccessKeyConfig struct {
	ID     string `yaml:"id"`
	Secret string `yaml:"secret"`
	// Projects maps a project name, or "*" for every project, to the
	// permissions the key has there (a shorthand for RAM statements, see
	// Permission).
	Projects map[string]Permission `yaml:"projects,omitempty"`
	// SecurityToken makes this an STS credential: every request must carry
	// it in x-acs-security-token (the SDK sends Client.SecurityToken there).
	SecurityToken string `yaml:"securityToken,omitempty"`
	// State is enabled (the default), disabled or expired (for an STS
	// credential); Server.SetKeyState changes it.
	State KeyState `yaml:"state,omitempty"`
	// KafkaUpload lists projects on which the key has SLS's documented
	// policy for its Kafka endpoint (KafkaUploadPolicy).
	KafkaUpload []string `yaml:"kafkaUpload,omitempty"`
	// Policy is a RAM policy of its own, per action and resource with
	// wildcards; a Deny statement overrides every Allow, Projects and
	// KafkaUpload included.
	Policy []Statement `yaml:"policy,omitempty"`
}

// Permission is what a key may do in one project. Read grants the RAM
// actions log:ListProject, log:GetProject, log:ListLogStores,
// log:GetLogStore, log:ListShards and log:GetCursorOrData (GetCursor,
// GetCursorTime, PullLogs); Write grants log:PostLogStoreLogs,
// log:SplitShard and log:MergeShards (see policy.go).
type Permission struct {
	Read  bool `yaml:"read"`
	Write bool `yaml:"write"`
}

// DefaultConfig is the layout `make run` and cmd/slsfake use without a
// config file: project test-project-1 with test-logstore-1 (2 shards) and
// test-logstore-2 (4 shards), and AccessKey demo-akid/demo-aksecret with
// read and write on every project. Quotas are SLS's defaults.
func DefaultConfig() Config {
	return Config{
		EndpointHost: DefaultEndpointHost,
		Region:       "cn-local",
		Projects: []ProjectConfig{{
			Name:        "test-project-1",
			Description: "slsfake default project",
			Logstores: []LogstoreConfig{
				{Name: "test-logstore-1", TTL: 30, ShardCount: 2},
				{Name: "test-logstore-2", TTL: 30, ShardCount: 4},
			},
		}},
		AccessKeys: []AccessKeyConfig{{
			ID:       "demo-akid",
			Secret:   "demo-aksecret",
			Projects: map[string]Permission{"*": {Read: true, Write: true}},
		}},
	}
}

// LoadConfig reads a YAML config file (see ParseConfig).
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read slsfake config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("cannot load %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes a YAML config. Unknown fields are errors, so a typo
// does not silently fall back to a default. Durations are Go strings
// ("200ms", "15m").
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty document (io.EOF) is the zero Config: every default.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("cannot parse slsfake config: %w", err)
	}
	if _, err := cfg.normalize(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// normalize checks the config and returns a copy with defaults filled in.
func (c Config) normalize() (Config, error) {
	if c.EndpointHost == "" {
		c.EndpointHost = DefaultEndpointHost
	}
	if c.MaxStoredBytes == 0 {
		c.MaxStoredBytes = DefaultMaxStoredBytes
	}
	if c.MaxBodyRawBytes == 0 {
		c.MaxBodyRawBytes = DefaultMaxBodyRawBytes
	}
	if c.MaxLogGroupBytes == 0 {
		c.MaxLogGroupBytes = DefaultMaxLogGroupBytes
	}
	if c.MaxLogsPerGroup == 0 {
		c.MaxLogsPerGroup = DefaultMaxLogsPerGroup
	}
	if c.OutOfRangeTimeCode == "" {
		c.OutOfRangeTimeCode = "PostBodyInvalid"
	}
	if c.TimeWindow == 0 {
		c.TimeWindow = DefaultTimeWindow
	}
	if c.DefaultQuota == nil {
		c.DefaultQuota = &Quota{BytesPerSec: DefaultWriteBytesPerSec, RequestsPerSec: DefaultWriteRequestsPerSec, Soft: true}
	}
	if c.QuotaErrorCode == "" {
		c.QuotaErrorCode = "ShardWriteQuotaExceed"
	}
	if c.ProjectQuota == nil {
		c.ProjectQuota = &ProjectQuota{WriteBytesPerMinute: DefaultProjectWriteBytesPerMinute,
			WriteRequestsPerMinute: DefaultProjectWriteRequestsPerMinute}
	}
	if c.RequireV4 && c.Region == "" {
		return c, errors.New("cannot require signature v4 without a region")
	}
	projects := make(map[string]bool)
	c.Projects = append([]ProjectConfig(nil), c.Projects...)
	for pi := range c.Projects {
		p := &c.Projects[pi]
		if !validName(p.Name) {
			return c, fmt.Errorf("cannot use project name %q: want 3-63 of [a-z0-9-]", p.Name)
		}
		if projects[p.Name] {
			return c, fmt.Errorf("cannot use project %q twice", p.Name)
		}
		projects[p.Name] = true
		if err := p.State.check(); err != nil {
			return c, fmt.Errorf("cannot use project %s: %w", p.Name, err)
		}
		stores := make(map[string]bool)
		p.Logstores = append([]LogstoreConfig(nil), p.Logstores...)
		for li := range p.Logstores {
			ls := &p.Logstores[li]
			if ls.Name == "" || strings.ContainsAny(ls.Name, "/?#") {
				return c, fmt.Errorf("cannot use logstore name %q in project %s", ls.Name, p.Name)
			}
			if stores[ls.Name] {
				return c, fmt.Errorf("cannot use logstore %s/%s twice", p.Name, ls.Name)
			}
			stores[ls.Name] = true
			if ls.TTL == 0 {
				ls.TTL = 30
			}
			if len(ls.Shards) == 0 {
				if ls.ShardCount == 0 {
					ls.ShardCount = 2
				}
				if ls.ShardCount < 1 || ls.ShardCount > 256 {
					return c, fmt.Errorf("cannot make %d shards for %s/%s: want 1..256", ls.ShardCount, p.Name, ls.Name)
				}
				ls.Shards = evenLayout(ls.ShardCount)
			} else {
				shards, err := checkLayout(ls.Shards)
				if err != nil {
					return c, fmt.Errorf("cannot use the shard layout of %s/%s: %w", p.Name, ls.Name, err)
				}
				ls.Shards = shards
			}
		}
	}
	ids := make(map[string]bool)
	for _, k := range c.AccessKeys {
		if k.ID == "" || k.Secret == "" {
			return c, fmt.Errorf("cannot use an AccessKey with an empty id or secret")
		}
		if ids[k.ID] {
			return c, fmt.Errorf("cannot use AccessKey %s twice", k.ID)
		}
		ids[k.ID] = true
		if err := k.State.check(); err != nil {
			return c, fmt.Errorf("cannot use AccessKey %s: %w", k.ID, err)
		}
		if err := checkPolicy(k.Policy); err != nil {
			return c, fmt.Errorf("cannot use the policy of AccessKey %s: %w", k.ID, err)
		}
	}
	for i, f := range c.Faults {
		if err := f.check(); err != nil {
			return c, fmt.Errorf("cannot use fault %d: %w", i, err)
		}
	}
	return c, nil
}

// validName follows SLS's project naming rule; project names never contain
// a dot, which is why the project is the first label of the Host header.
func validName(s string) bool {
	if len(s) < 3 || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return s[0] != '-' && s[len(s)-1] != '-'
}
