package shardwriter

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// Options configures a Service. Zero fields take the documented defaults.
//
// The yaml names are the keys of the `sls` section of slsrelay's
// configuration file (LogGroup and Convert are inlined there); fields
// tagged "-" are internal tuning or set by the relay's assembly.
type Options struct {
	// Endpoint is the SLS endpoint host (e.g. cn-hangzhou.log.aliyuncs.com);
	// the SDK sends to https://<project>.<endpoint>, or to
	// http://<project>.<host> when written "http://<host>". Required.
	Endpoint string `yaml:"endpoint"`
	// Region is the SLS region (e.g. cn-hangzhou). Set, requests are
	// signed with signature v4, which some regions require.
	Region string `yaml:"region"`
	// AuthVersion is the signature version: "v4" (needs Region), "v1", or
	// "" for v4 when Region is set and v1 otherwise.
	AuthVersion string `yaml:"auth_version"`
	// HTTPClient carries every SLS request. Default: a client with a 60 s
	// timeout and a connection pool sized for many shards.
	HTTPClient *http.Client `yaml:"-"`
	// Compression of PutLogs bodies: "lz4" (default, as SLS's own agents)
	// or "zstd".
	Compression string `yaml:"compression"`
	// RetryInterval is the wait before retrying a write that failed for a
	// reason time can fix (network, 5xx, quota). Default 1 s, as SLS's
	// documentation asks of Kafka shippers.
	RetryInterval time.Duration `yaml:"retry_interval"`
	// MaxRetryInterval caps the back-off: each retry of a run of failures
	// waits twice as long as the one before, from RetryInterval up to
	// MaxRetryInterval. Default 5 s, so that a shard writes again within
	// seconds of SLS answering after an outage (fresh logs first, fresh.go);
	// only one LogGroup of a shard is retried at a time (retryAfter), so
	// an outage costs SLS one request per shard every 5 s. (The SDK's own
	// producer backs off up to 50 s.)
	MaxRetryInterval time.Duration `yaml:"max_retry_interval"`
	// LogGroup bounds one PutLogs request (see LogGroupLimits).
	LogGroup LogGroupLimits `yaml:",inline"`
	// ShardBytesPerSec and ShardRequestsPerSec pace each writer to its
	// shard's SLS write quota (raw bytes and PutLogs requests per second),
	// also while a backlog drains after an outage. Defaults 5 MB/s and
	// 500/s, SLS's per-shard limits; negative disables.
	ShardBytesPerSec    int `yaml:"shard_bytes_per_sec"`
	ShardRequestsPerSec int `yaml:"shard_requests_per_sec"`
	// Pace is "adaptive" (default): the shard rates above are where each
	// writer starts; it raises its rate while it has more to send and
	// backs off on SLS's quota answers, per shard (ShardWriteQuotaExceed)
	// and per project (WriteQuotaExceed, shared by the project's
	// writers), instead of retrying them with back-off. "fixed" keeps the
	// shard rates and retries quota answers with back-off.
	Pace string `yaml:"pace"`
	// RequestsInFlight is how many PutLogs requests (LogGroups) a shard's
	// writer has in flight at most (with the fresh writer beside it while
	// a backlog drains, the two together): it sends the next while SLS
	// answers the last, so a shard is not held to one request per round
	// trip.
	// Positions pass only answered LogGroups in order, so a crash sends
	// again at most this many LogGroups per shard (window.go). Default 4.
	RequestsInFlight int `yaml:"requests_in_flight"`
	// Linger is how long a writer waits for more entries before sending a
	// LogGroup that is not full, trading latency for fewer, larger
	// requests. Default 200 ms.
	Linger time.Duration `yaml:"linger"`
	// FreshAfter: a writer reading entries older than this (after an
	// outage of SLS, or a restart with a backlog) splits off a writer of
	// fresh entries (fresh.go), so that new logs reach SLS within seconds
	// while the backlog drains. Default 10 s; negative disables.
	FreshAfter time.Duration `yaml:"-"`
	// ReadBytes bounds the stored (compressed) bytes a writer reads from
	// the WAL at a time. Default 4 MiB.
	ReadBytes int `yaml:"-"`
	// Convert decides how records become logs.
	Convert ConvertOptions `yaml:",inline"`
	// Source is each LogGroup's __source__: "client_address" (the
	// default) the IP of the producer's connection, as Logtail records
	// the address of the machine it collects on; "relay_host" this host's
	// name; anything else is that fixed string (UTF-8, at most 128
	// bytes). See attribution.go.
	Source string `yaml:"source"`
	// Tags lists what of the producer each LogGroup carries as a tag
	// (shown in SLS as __tag__:<name>): client_id (the Kafka client.id),
	// sasl_user, client_software ("name/version" the client sent in
	// ApiVersions v3+). nil means [client_id]; empty, none. Logs of
	// producers that differ in source or a tag never share a LogGroup.
	Tags []string `yaml:"tags"`
	// Topic is each LogGroup's __topic__. Default empty.
	Topic string `yaml:"topic"`
	// Catalog configures the shard and key cache.
	Catalog CatalogOptions `yaml:"-"`
	Logger  *slog.Logger   `yaml:"-"`

	// putViaSDK sends lz4 PutLogs through the SDK's
	// PostRawLogWithCompressType instead of putlogs.go: the path before,
	// kept for BenchmarkWriterVsSDKProducer to compare side by side.
	putViaSDK bool
}

func (o *Options) setDefaults() error {
	if o.Endpoint == "" {
		return errors.New("shardwriter: no SLS endpoint configured")
	}
	if o.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		o.HTTPClient = &http.Client{Transport: t, Timeout: 60 * time.Second}
	}
	switch o.Compression {
	case "", "lz4":
		o.Compression = "lz4"
	case "zstd":
	default:
		return errors.New("shardwriter: compression must be lz4 or zstd, not " + o.Compression)
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = time.Second
	}
	if o.MaxRetryInterval == 0 {
		o.MaxRetryInterval = 5 * time.Second
	}
	if o.ShardBytesPerSec == 0 {
		o.ShardBytesPerSec = 5_000_000
	}
	if o.ShardRequestsPerSec == 0 {
		o.ShardRequestsPerSec = 500
	}
	switch o.Pace {
	case "":
		o.Pace = "adaptive"
	case "adaptive", "fixed":
	default:
		return errors.New("shardwriter: pace must be adaptive or fixed, not " + o.Pace)
	}
	if o.RequestsInFlight < 0 {
		return fmt.Errorf("shardwriter: requests_in_flight must be at least 1, not %d", o.RequestsInFlight)
	}
	if o.RequestsInFlight == 0 {
		o.RequestsInFlight = 4
	}
	if o.Linger == 0 {
		o.Linger = 200 * time.Millisecond
	}
	if o.FreshAfter == 0 {
		o.FreshAfter = 10 * time.Second
	}
	if o.ReadBytes == 0 {
		o.ReadBytes = 4 << 20
	}
	// SLS takes a topic of up to 128 bytes of UTF-8 (data model page,
	// https://www.alibabacloud.com/help/doc-detail/48871.htm); a longer
	// one would have every LogGroup refused. newAttributor checks the
	// source.
	if len(o.Topic) > atMaxSource || !utf8.ValidString(o.Topic) {
		return fmt.Errorf("shardwriter: the LogGroup topic %q is not UTF-8 of at most 128 bytes, as SLS requires", o.Topic)
	}
	attrib, err := newAttributor(o.Source, o.Tags)
	if err != nil {
		return err
	}
	o.Convert.attrib = attrib
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Catalog.Logger == nil {
		o.Catalog.Logger = o.Logger
	}
	return nil
}

func (o *Options) compressType() int {
	if o.Compression == "zstd" {
		return sls.Compress_ZSTD
	}
	return sls.Compress_LZ4
}
