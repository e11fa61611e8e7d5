package kafkatest

import (
	"crypto/tls"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// Listener is how a client reaches one listener of a relay.
type Listener struct {
	Addr string
	// TLS, when set, is the client side of a SASL_SSL listener, and
	// CAFile the CA it trusts (kcat takes a path).
	TLS    *tls.Config
	CAFile string
	// User (the project) and Password (AccessKeyId#AccessKeySecret)
	// authenticate with SASL PLAIN when User is set.
	User, Password string
}

// As is l with other SASL credentials.
func (l Listener) As(user, password string) Listener {
	l.User, l.Password = user, password
	return l
}

// KgoOpts reach l with bounded timeouts and retries, a manual partitioner
// (records go to the partition they name) and kgo's warnings in the test
// log when asked for (LogWriter). Options a caller appends override these.
func (l Listener) KgoOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(l.Addr),
		kgo.DialTimeout(5 * time.Second),
		kgo.RequestTimeoutOverhead(10 * time.Second),
		kgo.RetryTimeout(20 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.WithLogger(kgo.BasicLogger(LogWriter{}, kgo.LogLevelWarn, nil)),
	}
	if l.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(l.TLS.Clone()))
	}
	if l.User != "" {
		opts = append(opts, kgo.SASL(plain.Auth{User: l.User, Pass: l.Password}.AsMechanism()))
	}
	return opts
}

// NewKgo is a kgo client closed when the test ends.
func NewKgo(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// SaramaConfig reaches l as a producer of Kafka version v that returns
// successes and errors, with a manual partitioner. It authenticates as
// the Beats do: SaslHandshake v1 after ApiVersions from Kafka 1.0 on, v0
// without ApiVersions before. Timeouts and retries are the caller's to set.
func (l Listener) SaramaConfig(v sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.ApiVersionsRequest = v.IsAtLeast(sarama.V1_0_0_0)
	if l.TLS != nil {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = l.TLS.Clone()
	}
	if l.User != "" {
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		cfg.Net.SASL.Handshake = true
		cfg.Net.SASL.Version = sarama.SASLHandshakeV0
		if v.IsAtLeast(sarama.V1_0_0_0) {
			cfg.Net.SASL.Version = sarama.SASLHandshakeV1
		}
		cfg.Net.SASL.User = l.User
		cfg.Net.SASL.Password = l.Password
	}
	return cfg
}

// SaramaSend produces msgs to addr with a SyncProducer (one SendMessages
// call) and returns the first error, failing the test if no answer comes
// within timeout. The producer is closed when the test ends, not before,
// so that closing cannot wait on or cut short what the test checks next.
func SaramaSend(t testing.TB, addr string, cfg *sarama.Config, msgs []*sarama.ProducerMessage, timeout time.Duration) error {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		return err
	}
	t.Cleanup(func() { p.Close() })
	done := make(chan error, 1)
	go func() { done <- p.SendMessages(msgs) }()
	select {
	case err := <-done:
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			return perrs[0].Err
		}
		return err
	case <-time.After(timeout):
		t.Fatalf("sarama: SendMessages did not return in %v", timeout)
		return nil
	}
}

// KcatArgs are kcat's (librdkafka's) arguments that reach l: the broker,
// the security protocol, and the SASL credentials and CA file it needs.
func (l Listener) KcatArgs() []string {
	args := []string{"-b", l.Addr}
	switch {
	case l.TLS != nil:
		args = append(args, "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location="+l.CAFile)
	case l.User != "":
		args = append(args, "-X", "security.protocol=SASL_PLAINTEXT")
	default:
		args = append(args, "-X", "security.protocol=PLAINTEXT")
	}
	if l.User != "" {
		args = append(args, "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username="+l.User, "-X", "sasl.password="+l.Password)
	}
	return args
}

// LogWriter sends clients' logs to stderr when the test runs with -v or
// SLSRELAY_TEST_LOG is set, and drops them otherwise.
type LogWriter struct{}

func (LogWriter) Write(b []byte) (int, error) {
	if testing.Verbose() || os.Getenv("SLSRELAY_TEST_LOG") != "" {
		return os.Stderr.Write(b)
	}
	return len(b), nil
}
