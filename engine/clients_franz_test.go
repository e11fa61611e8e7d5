package engine

// franz-go (kgo) against the relay: every protocol generation from Kafka
// 0.8.0 to the latest, every codec, idempotent or not, acks 0/1/-1, over
// PLAINTEXT and SASL_SSL; then the errors a shipper must see, JSON topics
// and pipelined requests.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// clKgoVersion is a protocol generation kgo is pinned to.
type clKgoVersion struct {
	name  string
	v     func() *kversion.Versions
	magic int8 // the message format it produces
	zstd  bool // Produce v7+ (Kafka 2.1)
}

var clKgoVersions = []clKgoVersion{
	// Kafka 0.8.0 had no ApiVersions and no SASL: kgo then sends Produce
	// v0 (magic 0) without asking. With SASL configured, kgo pinned to
	// exactly 0.8.0 sends a bare PLAIN token with no SaslHandshake (it
	// handshakes only with brokers whose ApiVersions list the key), which
	// no Kafka broker accepts for PLAIN, nor does the relay: that pin is
	// impossible over SASL. The SASL cases pin 0.8.0 plus ApiVersions v0:
	// still Produce v0 and magic 0, after the handshake kgo picks from the
	// relay's ApiVersions whatever its pin says (SaslHandshake v1 and
	// SaslAuthenticate; kgo applies no pin to SASL, so it never uses the
	// v0 handshake while a broker offers v1). sarama with Version 0.8.2
	// and SaslHandshake v0, as the Beats send, covers that path.
	{"0.8.0", kversion.V0_8_0, 0, false},
	{"0.10.0", kversion.V0_10_0, 1, false},
	{"0.11.0", kversion.V0_11_0, 2, false},
	{"1.0", kversion.V1_0_0, 2, false},
	{"2.1", kversion.V2_1_0, 2, true},
	{"latest", kversion.Stable, 2, true}, // Produce v12: the relay offers no v13 (00_produce.go)
}

func clKgoCodec(c int8) kgo.CompressionCodec {
	switch c {
	case clCodecGzip:
		return kgo.GzipCompression()
	case clCodecSnappy:
		return kgo.SnappyCompression()
	case clCodecLz4:
		return kgo.Lz4Compression()
	case clCodecZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// clKgoOpts returns the options that reach r through l as project/password,
// with bounded timeouts and retries.
func clKgoOpts(r *clRelay, l clListener, password string) []kgo.Opt {
	return append(r.listener(l, password).KgoOpts(),
		kgo.RequestTimeoutOverhead(5*time.Second),
		kgo.RetryTimeout(10*time.Second),
	)
}

// clKgoRecords converts sent records for kgo.
func clKgoRecords(topic string, sent []clSent, withTime bool) []*kgo.Record {
	recs := make([]*kgo.Record, len(sent))
	for i, s := range sent {
		kr := &kgo.Record{Topic: topic, Partition: s.Partition, Key: s.Key, Value: s.Value}
		if withTime {
			kr.Timestamp = s.Time
		}
		for _, h := range s.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs[i] = kr
	}
	return recs
}

// TestClientsFranz produces with kgo pinned to each protocol generation,
// each codec it allows, idempotent or not, over PLAINTEXT and SASL_SSL, and
// checks what the appender received.
func TestClientsFranz(t *testing.T) {
	t.Parallel()
	const n = 20
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	f := func(t *testing.T, v clKgoVersion, l clListener, codec int8, idempotent bool, acks kgo.Acks) {
		t.Parallel()
		clientID := "kgo-" + v.name
		versions := v.v()
		if v.magic == 0 && l.sasl {
			versions.SetMaxKeyVersion(18, 0) // see clKgoVersions
		}
		opts := append(clKgoOpts(r, l, clPassword),
			kgo.ClientID(clientID),
			kgo.MaxVersions(versions),
			kgo.ProducerBatchCompression(clKgoCodec(codec)),
			kgo.RequiredAcks(acks),
		)
		if !idempotent {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl := kafkatest.NewKgo(t, opts...)
		sent := clMakeRecords(t.Name(), n, 4, time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), clTimeout)
		defer cancel()
		if err := cl.ProduceSync(ctx, clKgoRecords(testTopic4, sent, true)...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		exp := clExpect{magic: v.magic, codec: codec, clientID: clientID, timestamps: 'x', headers: v.magic == 2, idempotent: idempotent && v.magic == 2}
		if v.magic == 0 {
			exp.timestamps = 'n'
		}
		r.checkStored(t, testTopic4, 4, t.Name(), sent, exp)
	}
	for _, v := range clKgoVersions {
		for _, l := range []clListener{clPlaintext, clSASLSSL} {
			for _, codec := range clAllCodecs {
				if codec == clCodecZstd && !v.zstd {
					continue
				}
				// Idempotence needs InitProducerId (0.11+); kgo silently
				// drops it for older brokers, so only 0.11+ tries it.
				if v.magic == 2 {
					t.Run(fmt.Sprintf("%s/%s/%s/idempotent", v.name, l.name, clCodecNames[codec]), func(t *testing.T) {
						f(t, v, l, codec, true, kgo.AllISRAcks())
					})
				}
				// Not idempotent: acks 1 and 0 in turn.
				acks, acksName := kgo.LeaderAck(), "acks=1"
				if codec%2 == 1 {
					acks, acksName = kgo.NoAck(), "acks=0"
				}
				t.Run(fmt.Sprintf("%s/%s/%s/%s", v.name, l.name, clCodecNames[codec], acksName), func(t *testing.T) {
					f(t, v, l, codec, false, acks)
				})
			}
		}
	}
}

// clRawProduce sends one Produce request (acks -1, as the client is
// configured) for topic/partition holding values as an uncompressed v2
// batch through cl, and returns the partition's answer. The topic is named
// and identified (its ID from a Metadata request), as a client that
// could send Produce v13 (topics by ID) would; the relay offers v12 at
// most, so kgo names it.
func clRawProduce(ctx context.Context, cl *kgo.Client, topic string, partition int32, values ...[]byte) (kmsg.ProduceResponseTopicPartition, error) {
	var none kmsg.ProduceResponseTopicPartition
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		return none, fmt.Errorf("metadata: %w", err)
	}
	if len(mresp.Topics) != 1 {
		return none, fmt.Errorf("metadata answered %d topics, want 1", len(mresp.Topics))
	}

	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, mresp.Topics[0].TopicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = clRecordBatch(time.Now(), values...)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return none, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return none, fmt.Errorf("produce v%d response with %d topics, want 1 with 1 partition", req.Version, len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0], nil
}

// clRecordBatch encodes values as one uncompressed v2 RecordBatch.
func clRecordBatch(ts time.Time, values ...[]byte) []byte {
	recs := make([]batchtest.Record, len(values))
	for i, v := range values {
		recs[i] = batchtest.Record{Value: v, Timestamp: ts.UnixMilli()}
	}
	return batchtest.UncompressedRecordBatch(recs, nil)
}

// clNoError is the kerr form of error code 0.
var clNoError = &kerr.Error{Message: "NONE", Code: 0}

// clValue returns a value of about size bytes that tag owns and that does
// not compress.
func clValue(tag string, size int) []byte {
	v := fmt.Appendf(nil, "%s #000 ", tag)
	pad := make([]byte, max(size-len(v), 0))
	for i := range pad {
		pad[i] = byte('a' + rand.N(26))
	}
	return append(v, pad...)
}

// TestClientsFranzErrors checks the errors a kgo producer sees, both as
// the client reports them and in the Produce response itself.
func TestClientsFranzErrors(t *testing.T) {
	t.Parallel()
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	type outcome struct {
		clientErr *kerr.Error // what ProduceSync fails with (nil: it succeeds)
		mention   string      // text the client's error must contain
		noClient  bool        // kgo refuses to send it: only the raw request
		raw       bool        // also send a raw Produce request…
		rawErr    *kerr.Error // …and expect this partition error
		stored    int         // records of the case the relay must hold
	}
	f := func(t *testing.T, l clListener, password, topic string, partition int32, valueSize int, want outcome) {
		t.Parallel()
		cl := kafkatest.NewKgo(t, append(clKgoOpts(r, l, password),
			kgo.UnknownTopicRetries(1),
			kgo.RecordRetries(2),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerBatchMaxBytes(4<<20), // let the relay, not kgo, judge the size
		)...)
		ctx, cancel := context.WithTimeout(context.Background(), clTimeout)
		defer cancel()
		value := clValue(t.Name(), valueSize)
		if !want.noClient {
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: partition, Value: value}).FirstErr()
			switch {
			case want.clientErr == nil && err != nil:
				t.Fatalf("produce: %v", err)
			case want.clientErr != nil && !errors.Is(err, want.clientErr):
				t.Fatalf("produce: got error %v, want %v", err, want.clientErr)
			case want.mention != "" && (err == nil || !strings.Contains(err.Error(), want.mention)):
				t.Fatalf("produce: error %v does not mention %q", err, want.mention)
			}
		}
		if want.raw {
			p, err := clRawProduce(ctx, cl, topic, partition, value)
			if err != nil {
				t.Fatalf("raw produce: %v", err)
			}
			if p.ErrorCode != want.rawErr.Code {
				t.Fatalf("raw produce: partition error %v, want %v", kerr.ErrorForCode(p.ErrorCode), want.rawErr)
			}
			if want.rawErr.Code != 0 && p.BaseOffset != -1 {
				t.Errorf("raw produce: base offset %d with an error, want -1", p.BaseOffset)
			}
		}
		logstore, _ := splitTopic(topic)
		if got := r.caseCount(t, logstore, 4, t.Name()); got != want.stored {
			t.Fatalf("relay holds %d records of this case, want %d", got, want.stored)
		}
	}
	for _, l := range []clListener{clPlaintext, clSASLSSL} {
		name := func(s string) string { return l.name + "/" + s }
		t.Run(name("unknown topic"), func(t *testing.T) {
			f(t, l, clPassword, "no-such-logstore", 0, 10, outcome{clientErr: kerr.UnknownTopicOrPartition, raw: true, rawErr: kerr.UnknownTopicOrPartition})
		})
		t.Run(name("unknown partition"), func(t *testing.T) {
			// kgo refuses a partition Metadata did not report.
			f(t, l, clPassword, testTopic, 7, 10, outcome{noClient: true, raw: true, rawErr: kerr.UnknownTopicOrPartition})
		})
		t.Run(name("message too large"), func(t *testing.T) {
			f(t, l, clPassword, testTopic, 1, 1_000_100, outcome{clientErr: kerr.MessageTooLarge, raw: true, rawErr: kerr.MessageTooLarge})
		})
		t.Run(name("just under the size limit"), func(t *testing.T) {
			f(t, l, clPassword, testTopic, 1, 999_000, outcome{raw: true, rawErr: clNoError, stored: 2})
		})
		t.Run(name("acks=-1"), func(t *testing.T) {
			f(t, l, clPassword, testTopic4, 3, 100, outcome{raw: true, rawErr: clNoError, stored: 2})
		})
	}
	for _, l := range []clListener{clSASLSSL, clSASLText} {
		t.Run(l.name+"/wrong password", func(t *testing.T) {
			f(t, l, testAKID+"#wrong", testTopic, 0, 10, outcome{clientErr: kerr.TopicAuthorizationFailed, raw: true, rawErr: kerr.TopicAuthorizationFailed})
		})
		t.Run(l.name+"/unknown access key", func(t *testing.T) {
			f(t, l, "other-akid#"+testSecret, testTopic, 0, 10, outcome{clientErr: kerr.TopicAuthorizationFailed, raw: true, rawErr: kerr.TopicAuthorizationFailed})
		})
		t.Run(l.name+"/malformed password", func(t *testing.T) {
			f(t, l, "demo-akid-demo-aksecret", testTopic, 0, 10, outcome{clientErr: kerr.SaslAuthenticationFailed, mention: "AccessKeyId#AccessKeySecret"})
		})
	}
}

// TestClientsFranzJSONTopic produces to "<logstore>.json": the entries land
// in the Logstore's stream, marked JSON.
func TestClientsFranzJSONTopic(t *testing.T) {
	t.Parallel()
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	f := func(t *testing.T, l clListener) {
		t.Parallel()
		cl := kafkatest.NewKgo(t, append(clKgoOpts(r, l, clPassword), kgo.ProducerBatchCompression(kgo.GzipCompression()))...)
		sent := clMakeRecords(t.Name(), 20, 2, time.Now())
		for i := range sent {
			sent[i].Value = fmt.Appendf(nil, `%s #{"i":%d,"nested":{"a":[1,2]}}`, t.Name(), i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), clTimeout)
		defer cancel()
		if err := cl.ProduceSync(ctx, clKgoRecords(testTopic+".json", sent, true)...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		r.checkStored(t, testTopic, 2, t.Name(), sent, clExpect{magic: 2, codec: clCodecGzip, headers: true, timestamps: 'x', json: true, idempotent: true})
		for _, k := range r.app.Streams() {
			if k.Logstore != testTopic || k.Project != testProject {
				t.Errorf("stream %+v received entries; only %s/%s should", k, testProject, testTopic)
			}
		}
	}
	t.Run("PLAINTEXT", func(t *testing.T) { f(t, clPlaintext) })
	t.Run("SASL_SSL", func(t *testing.T) { f(t, clSASLSSL) })
}

// clInFlightHook counts produce requests written and not yet answered, and
// remembers the most at once.
type clInFlightHook struct {
	now, max atomic.Int64
}

func (h *clInFlightHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != 0 || err != nil {
		return
	}
	clStoreMax(&h.max, h.now.Add(1))
}

func (h *clInFlightHook) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	if key == 0 {
		h.now.Add(-1)
	}
}

// TestClientsFranzPipelining has one kgo client keep up to five Produce
// requests in flight on its connection, against appends that complete late
// and out of order: the relay must answer in request order, and each
// partition's records must be stored in send order without gaps.
func TestClientsFranzPipelining(t *testing.T) {
	t.Parallel()
	const n = 200
	r := startClSlowRelay(t, 3*time.Millisecond)
	t.Cleanup(func() { r.checkAllStreams(t) })
	f := func(t *testing.T, l clListener, idempotent bool) {
		t.Parallel()
		hook := &clInFlightHook{}
		opts := append(clKgoOpts(r, l, clPassword),
			kgo.WithHooks(hook),
			kgo.ProducerLinger(0),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerBatchMaxBytes(512), // one record per batch: many requests
		)
		if !idempotent {
			// (Idempotent, kgo keeps 5 in flight from Kafka 1.0 on.)
			opts = append(opts, kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()), kgo.MaxProduceRequestsInflightPerBroker(5))
		}
		cl := kafkatest.NewKgo(t, opts...)
		sent := clMakeRecords(t.Name(), n, 2, time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), clTimeout)
		defer cancel()
		var failed atomic.Pointer[error]
		for _, kr := range clKgoRecords(testTopic, sent, true) {
			cl.Produce(ctx, kr, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
		if err := failed.Load(); err != nil {
			t.Fatalf("produce: %v", *err)
		}
		r.checkStored(t, testTopic, 2, t.Name(), sent, clExpect{magic: 2, codec: clCodecNone, headers: true, timestamps: 'x', idempotent: idempotent})
		t.Logf("at most %d produce requests in flight on the client; %d appends outstanding in the relay", hook.max.Load(), r.slow.max.Load())
		if hook.max.Load() < 2 {
			t.Errorf("the client never had more than %d produce request in flight: the test did not pipeline", hook.max.Load())
		}
	}
	for _, l := range []clListener{clPlaintext, clSASLSSL} {
		t.Run(l.name+"/acks=1", func(t *testing.T) { f(t, l, false) })
		t.Run(l.name+"/idempotent", func(t *testing.T) { f(t, l, true) })
	}
}
