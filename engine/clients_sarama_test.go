package engine

// IBM/sarama (what Beats' fork and Telegraf build on) against the relay:
// Version 0.8.2, 0.10.2, 1.0 and 2.1, SaslHandshake v0 and v1, SyncProducer
// and AsyncProducer, acks 1, -1 and 0, every codec sarama allows at each
// version, over PLAINTEXT and SASL_SSL; then the errors, JSON topics and
// pipelining.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// clSaramaVersion is a sarama Version and what it produces.
type clSaramaVersion struct {
	name   string
	v      sarama.KafkaVersion
	magic  int8
	codecs []int8 // what sarama allows at this version
}

var clSaramaVersions = []clSaramaVersion{
	// lz4 needs 0.10 in sarama (Kafka 0.8.2 had it, with the broken
	// header checksum; sarama refuses to send it), zstd 2.1.
	{"0.8.2", sarama.V0_8_2_0, 0, []int8{clCodecNone, clCodecGzip, clCodecSnappy}},
	{"0.10.2", sarama.V0_10_2_0, 1, []int8{clCodecNone, clCodecGzip, clCodecSnappy, clCodecLz4}},
	{"1.0", sarama.V1_0_0_0, 2, []int8{clCodecNone, clCodecGzip, clCodecSnappy, clCodecLz4}},
	{"2.1", sarama.V2_1_0_0, 2, clAllCodecs},
}

// clSaramaMode is how a sarama client reaches the relay.
type clSaramaMode struct {
	name string
	l    clListener
	// sasl is the SaslHandshake version; v0 goes with no ApiVersions (as
	// in the Beats), v1 with ApiVersions (as in Telegraf).
	sasl int16
}

var clSaramaModes = []clSaramaMode{
	{"PLAINTEXT", clPlaintext, -1},
	{"SASL_SSL/handshake-v0", clSASLSSL, sarama.SASLHandshakeV0},
	// sarama sends SaslHandshake v1 only with Version 1.0+ (it refuses
	// itself, with ErrUnsupportedVersion, below): skipped for older ones.
	{"SASL_SSL/handshake-v1", clSASLSSL, sarama.SASLHandshakeV1},
}

// allows reports whether sarama can run mode m at version v.
func (m clSaramaMode) allows(v sarama.KafkaVersion) bool {
	return m.sasl != sarama.SASLHandshakeV1 || v.IsAtLeast(sarama.V1_0_0_0)
}

func clSaramaCodec(c int8) sarama.CompressionCodec {
	switch c {
	case clCodecGzip:
		return sarama.CompressionGZIP
	case clCodecSnappy:
		return sarama.CompressionSnappy
	case clCodecLz4:
		return sarama.CompressionLZ4
	case clCodecZstd:
		return sarama.CompressionZSTD
	}
	return sarama.CompressionNone
}

// clSaramaConfig returns a config that reaches r in mode m as
// project/password, with bounded timeouts and retries.
func clSaramaConfig(r *clRelay, v sarama.KafkaVersion, m clSaramaMode, password string) *sarama.Config {
	cfg := r.listener(m.l, password).SaramaConfig(v)
	cfg.ClientID = "sarama-test"
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 20 * time.Millisecond
	cfg.Producer.Retry.Max = 1
	cfg.Producer.Retry.Backoff = 20 * time.Millisecond
	cfg.Producer.Timeout = 5 * time.Second
	cfg.ApiVersionsRequest = m.sasl == sarama.SASLHandshakeV1
	if m.l.sasl {
		cfg.Net.SASL.Version = m.sasl
	}
	return cfg
}

// clSaramaMessages converts sent records for sarama. Headers need 0.11+,
// timestamps 0.10+.
func clSaramaMessages(topic string, sent []clSent, v sarama.KafkaVersion) []*sarama.ProducerMessage {
	msgs := make([]*sarama.ProducerMessage, len(sent))
	for i, s := range sent {
		m := &sarama.ProducerMessage{Topic: topic, Partition: s.Partition, Key: sarama.ByteEncoder(s.Key), Value: sarama.ByteEncoder(s.Value), Timestamp: s.Time}
		if v.IsAtLeast(sarama.V0_11_0_0) {
			for _, h := range s.Headers {
				m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
			}
		}
		msgs[i] = m
	}
	return msgs
}

// clSaramaSend produces msgs with a SyncProducer (one SendMessages call) or
// an AsyncProducer (then waits for every success or error), and returns the
// first error. The producer is closed when the test ends, not before: see
// TestClientsAcks0ThenClose for why.
func clSaramaSend(t testing.TB, addr string, cfg *sarama.Config, async bool, msgs []*sarama.ProducerMessage) error {
	t.Helper()
	if !async {
		return kafkatest.SaramaSend(t, addr, cfg, msgs, clTimeout)
	}
	p, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		return err
	}
	t.Cleanup(func() { p.Close() })
	go func() {
		for _, m := range msgs {
			p.Input() <- m
		}
	}()
	var first error
	timeout := time.After(clTimeout)
	for range msgs {
		select {
		case <-p.Successes():
		case perr := <-p.Errors():
			if first == nil {
				first = perr.Err
			}
		case <-timeout:
			t.Fatalf("the AsyncProducer did not report on every message in %v", clTimeout)
		}
	}
	return first
}

// TestClientsSarama produces with sarama at each Version, over PLAINTEXT
// and SASL_SSL with both SASL handshakes, with SyncProducer and
// AsyncProducer and acks 1, -1 and 0, using every codec the version allows
// (each version and mode cycles through its codecs across the six
// producer/acks cases), and checks what the appender received.
func TestClientsSarama(t *testing.T) {
	t.Parallel()
	const n = 20
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	f := func(t *testing.T, v clSaramaVersion, m clSaramaMode, async bool, acks sarama.RequiredAcks, codec int8) {
		t.Parallel()
		cfg := clSaramaConfig(r, v.v, m, clPassword)
		cfg.Producer.RequiredAcks = acks
		cfg.Producer.Compression = clSaramaCodec(codec)
		sent := clMakeRecords(t.Name(), n, 4, time.Now())
		if err := clSaramaSend(t, r.addr(m.l), cfg, async, clSaramaMessages(testTopic4, sent, v.v)); err != nil {
			t.Fatalf("produce: %v", err)
		}
		exp := clExpect{magic: v.magic, codec: codec, clientID: cfg.ClientID, timestamps: 'x', headers: v.magic == 2}
		if v.magic == 0 {
			exp.timestamps = 'n'
		}
		r.checkStored(t, testTopic4, 4, t.Name(), sent, exp)
	}
	type delivery struct {
		async bool
		acks  sarama.RequiredAcks
	}
	deliveries := []delivery{
		{false, sarama.WaitForLocal}, {false, sarama.WaitForAll}, {false, sarama.NoResponse},
		{true, sarama.WaitForLocal}, {true, sarama.WaitForAll}, {true, sarama.NoResponse},
	}
	for _, v := range clSaramaVersions {
		for mi, m := range clSaramaModes {
			if !m.allows(v.v) {
				continue
			}
			for di, d := range deliveries {
				codec := v.codecs[(di+mi)%len(v.codecs)]
				kind := "sync"
				if d.async {
					kind = "async"
				}
				name := fmt.Sprintf("%s/%s/%s/acks=%d/%s", v.name, m.name, kind, d.acks, clCodecNames[codec])
				t.Run(name, func(t *testing.T) { f(t, v, m, d.async, d.acks, codec) })
			}
		}
	}
}

// TestClientsSaramaErrors checks the errors a sarama producer sees.
func TestClientsSaramaErrors(t *testing.T) {
	t.Parallel()
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	type outcome struct {
		err     error  // errors.Is target; nil: success
		anyErr  bool   // some error, whatever it is (SASL v0 failures only close the connection)
		mention string // text the error must contain
		stored  int    // records of the case the relay must hold
	}
	f := func(t *testing.T, m clSaramaMode, v sarama.KafkaVersion, password, topic string, valueSize int, want outcome) {
		t.Parallel()
		cfg := clSaramaConfig(r, v, m, password)
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.MaxMessageBytes = 4 << 20 // let the relay, not sarama, judge the size
		msg := &sarama.ProducerMessage{Topic: topic, Partition: 1, Value: sarama.ByteEncoder(clValue(t.Name(), valueSize))}
		err := clSaramaSend(t, r.addr(m.l), cfg, false, []*sarama.ProducerMessage{msg})
		switch {
		case want.err == nil && !want.anyErr && err != nil:
			t.Fatalf("produce: %v", err)
		case want.anyErr && err == nil:
			t.Fatalf("produce succeeded, want an error")
		case want.err != nil && !errors.Is(err, want.err):
			t.Fatalf("produce: got error %v, want %v", err, want.err)
		case want.mention != "" && (err == nil || !strings.Contains(err.Error(), want.mention)):
			t.Fatalf("produce: error %v does not mention %q", err, want.mention)
		}
		logstore, _ := splitTopic(topic)
		if got := r.caseCount(t, logstore, 4, t.Name()); got != want.stored {
			t.Fatalf("relay holds %d records of this case, want %d", got, want.stored)
		}
	}
	for _, m := range clSaramaModes {
		for _, v := range []clSaramaVersion{clSaramaVersions[0], clSaramaVersions[3]} {
			if !m.allows(v.v) {
				continue
			}
			name := func(s string) string { return v.name + "/" + m.name + "/" + s }
			t.Run(name("unknown topic"), func(t *testing.T) {
				f(t, m, v.v, clPassword, "no-such-logstore", 10, outcome{err: sarama.ErrUnknownTopicOrPartition})
			})
			t.Run(name("message too large"), func(t *testing.T) {
				f(t, m, v.v, clPassword, testTopic, 1_000_100, outcome{err: sarama.ErrMessageSizeTooLarge})
			})
			t.Run(name("just under the size limit"), func(t *testing.T) {
				f(t, m, v.v, clPassword, testTopic, 999_000, outcome{stored: 1})
			})
			t.Run(name("json topic"), func(t *testing.T) {
				f(t, m, v.v, clPassword, testTopic+".json", 10, outcome{stored: 1})
				for _, e := range r.caseEntries(t, testTopic, 1, t.Name()) {
					if !e.JSON {
						t.Errorf("entry %d of %s: JSON false", e.index, testTopic)
					}
				}
			})
			if !m.l.sasl {
				continue
			}
			t.Run(name("wrong password"), func(t *testing.T) {
				f(t, m, v.v, testAKID+"#wrong", testTopic, 10, outcome{err: sarama.ErrTopicAuthorizationFailed})
			})
			if m.sasl == sarama.SASLHandshakeV1 {
				t.Run(name("malformed password"), func(t *testing.T) {
					f(t, m, v.v, "demo-akid-demo-aksecret", testTopic, 10, outcome{err: sarama.ErrSASLAuthenticationFailed, mention: "AccessKeyId#AccessKeySecret"})
				})
			} else {
				// After a v0 handshake Kafka has no way to say why: it
				// closes the connection, and so does the relay.
				t.Run(name("malformed password"), func(t *testing.T) {
					f(t, m, v.v, "demo-akid-demo-aksecret", testTopic, 10, outcome{anyErr: true})
				})
			}
		}
	}
}

// TestClientsSaramaPipelining has one sarama AsyncProducer keep up to five
// requests in flight (MaxOpenRequests 5, one message per request) against
// appends that complete late and out of order: records must be stored in
// send order without gaps.
func TestClientsSaramaPipelining(t *testing.T) {
	t.Parallel()
	const n = 200
	r := startClSlowRelay(t, 3*time.Millisecond)
	t.Cleanup(func() { r.checkAllStreams(t) })
	// Not parallel: the relay's count of outstanding appends is this
	// client's alone.
	for _, m := range []clSaramaMode{clSaramaModes[0], clSaramaModes[1], clSaramaModes[2]} {
		for _, acks := range []sarama.RequiredAcks{sarama.WaitForLocal, sarama.NoResponse} {
			t.Run(fmt.Sprintf("%s/acks=%d", m.name, acks), func(t *testing.T) {
				r.slow.max.Store(0)
				cfg := clSaramaConfig(r, sarama.V2_1_0_0, m, clPassword)
				cfg.Net.MaxOpenRequests = 5
				cfg.Producer.Flush.MaxMessages = 1
				cfg.Producer.RequiredAcks = acks
				sent := clMakeRecords(t.Name(), n, 2, time.Now())
				if err := clSaramaSend(t, r.addr(m.l), cfg, true, clSaramaMessages(testTopic, sent, cfg.Version)); err != nil {
					t.Fatalf("produce: %v", err)
				}
				r.checkStored(t, testTopic, 2, t.Name(), sent, clExpect{magic: 2, codec: clCodecNone, headers: true, timestamps: 'x', clientID: cfg.ClientID})
				t.Logf("at most %d appends outstanding in the relay", r.slow.max.Load())
				if r.slow.max.Load() < 2 {
					t.Errorf("at most %d append outstanding: the client did not pipeline", r.slow.max.Load())
				}
			})
		}
	}
}
