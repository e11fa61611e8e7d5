package engine

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// Requests the relay must answer by closing the connection, as Kafka does,
// while it keeps serving everyone else.
func TestConnectionClosedOnBadRequests(t *testing.T) {
	r := startRelay(t, func(o *Options) { o.MaxRequestBytes = 1 << 20 })
	f := func(name, addr string, frame []byte) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			c := kafkatest.DialT(t, addr, nil)
			c.Write(frame)
			c.ExpectClosed()
			// The relay is still up for a well-behaved client.
			ok := kafkatest.DialT(t, r.plain, nil)
			if resp := ok.RoundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
				t.Fatalf("ApiVersions after a bad client: error %d", resp.ErrorCode)
			}
		})
	}
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 1)
		return binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 4

	f("unknown API key", r.plain, frame(header(1000, 0)))
	f("API key not served (Fetch)", r.plain, kafkatest.EncodeRequest(1, fetch))
	f("unsupported Produce version", r.plain, frame(header(0, 14)))
	f("Produce v13 (topics by ID, not served)", r.plain, kafkatest.EncodeRequest(1, kafkatest.ProduceRequest(13, 1, "", map[int32][]byte{0: kafkatest.RecordBatch("x")})))
	f("frame shorter than a header", r.plain, frame([]byte{0, 18, 0}))
	f("client id longer than the frame", r.plain, frame(append(header(18, 0)[:8], 0x7f, 0)))
	f("oversized frame", r.plain, binary.BigEndian.AppendUint32(nil, 2<<20))
	f("negative frame size", r.plain, binary.BigEndian.AppendUint32(nil, 0x80000000))
	f("truncated Produce body", r.plain, frame(append(header(0, 3), 0xff, 0xff, 0, 1)))
	f("Metadata before SASL", r.saslText, kafkatest.EncodeRequest(1, kmsg.NewPtrMetadataRequest()))
	f("Produce before SASL", r.saslText, kafkatest.EncodeRequest(1, kafkatest.ProduceRequest(3, 1, testTopic, map[int32][]byte{0: kafkatest.RecordBatch("x")})))
	f("frame over the pre-auth limit", r.saslText, binary.BigEndian.AppendUint32(nil, 1<<20))
}

func TestApiVersions(t *testing.T) {
	r := startRelay(t)
	c := kafkatest.DialT(t, r.plain, nil)

	// A version the relay does not know: v0 answer with UNSUPPORTED_VERSION.
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, 18)
	b = binary.BigEndian.AppendUint16(b, 99)
	b = binary.BigEndian.AppendUint32(b, 7)
	b = binary.BigEndian.AppendUint16(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	c.Write(b)
	v0 := kmsg.NewPtrApiVersionsRequest()
	resp := c.Read(7, v0).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MaxVersion != 5 {
		t.Fatalf("unknown version: %+v", resp)
	}

	// The current version lists exactly what is served, and no features.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version, req.ClientSoftwareName, req.ClientSoftwareVersion = 3, "test", "1.0"
	resp = c.RoundTrip(req).(*kmsg.ApiVersionsResponse)
	want := map[int16][2]int16{0: {0, 12}, 1: {4, 12}, 3: {0, 13}, 10: {0, 3}, 17: {0, 1}, 18: {0, 5}, 22: {0, 5}, 36: {0, 2}}
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if resp.ErrorCode != 0 || len(got) != len(want) || len(resp.SupportedFeatures) != 0 || len(resp.FinalizedFeatures) != 0 {
		t.Fatalf("ApiVersions v3: %+v", resp)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %d: versions %v, want %v", k, got[k], v)
		}
	}

	// A software name Kafka rejects.
	req.ClientSoftwareName = "-bad name"
	if resp = c.RoundTrip(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("bad software name: error %d, want INVALID_REQUEST", resp.ErrorCode)
	}
}

func TestSASLPlainErrors(t *testing.T) {
	r := startRelay(t)
	f := func(name, user, password, wantMsg string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			c := kafkatest.DialT(t, r.saslSSL, r.tls)
			resp := c.SASLPlain(user, password)
			if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
				t.Fatalf("error %d, want SASL_AUTHENTICATION_FAILED", resp.ErrorCode)
			}
			msg := ""
			if resp.ErrorMessage != nil {
				msg = *resp.ErrorMessage
			}
			if !strings.Contains(msg, wantMsg) {
				t.Fatalf("message %q does not say %q", msg, wantMsg)
			}
			if _, secret, ok := strings.Cut(password, "#"); ok && secret != "" && strings.Contains(msg, secret) {
				t.Fatalf("message %q echoes the secret", msg)
			}
			c.ExpectClosed()
		})
	}
	f("no '#'", testProject, "demo-akid-demo-aksecret", "has no '#'")
	f("empty AccessKeyId", testProject, "#demo-aksecret", "empty AccessKeyId")
	f("empty AccessKeySecret", testProject, "demo-akid#", "empty AccessKeySecret")
	f("empty username", "", "demo-akid#demo-aksecret", "empty username")

	t.Run("not a PLAIN message", func(t *testing.T) {
		c := kafkatest.DialT(t, r.saslSSL, r.tls)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		c.RoundTrip(hs)
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.SASLAuthBytes = []byte("no separators at all")
		if resp := c.RoundTrip(auth).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("error %d", resp.ErrorCode)
		}
		c.ExpectClosed()
	})
	t.Run("unsupported mechanism", func(t *testing.T) {
		c := kafkatest.DialT(t, r.saslSSL, r.tls)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "SCRAM-SHA-256"
		resp := c.RoundTrip(hs).(*kmsg.SASLHandshakeResponse)
		if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(resp.SupportedMechanisms) != 1 || resp.SupportedMechanisms[0] != "PLAIN" {
			t.Fatalf("%+v", resp)
		}
	})
	t.Run("SaslAuthenticate without handshake", func(t *testing.T) {
		c := kafkatest.DialT(t, r.saslSSL, r.tls)
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.SASLAuthBytes = []byte("\x00" + testProject + "\x00demo-akid#demo-aksecret")
		if resp := c.RoundTrip(auth).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("error %d, want ILLEGAL_SASL_STATE", resp.ErrorCode)
		}
		c.ExpectClosed()
	})
	t.Run("handshake on a PLAINTEXT listener", func(t *testing.T) {
		c := kafkatest.DialT(t, r.plain, nil)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		if resp := c.RoundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("error %d, want ILLEGAL_SASL_STATE", resp.ErrorCode)
		}
	})
	t.Run("v0 handshake, raw token", func(t *testing.T) {
		c := kafkatest.DialT(t, r.saslText, nil)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 0, "PLAIN"
		c.RoundTrip(hs)
		token := []byte("\x00" + testProject + "\x00" + testAKID + "#" + testSecret)
		c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(token))), token...))
		if b, err := c.ReadFrame(); err != nil || len(b) != 0 {
			t.Fatalf("raw token answer %q, %v; want an empty token", b, err)
		}
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 1
		topic := kmsg.NewMetadataRequestTopic()
		name := testTopic4
		topic.Topic = &name
		md.Topics = append(md.Topics, topic)
		resp := c.RoundTrip(md).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 4 {
			t.Fatalf("metadata after raw SASL: %+v", resp.Topics)
		}
	})
	t.Run("v0 handshake, bad raw token", func(t *testing.T) {
		c := kafkatest.DialT(t, r.saslText, nil)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 0, "PLAIN"
		c.RoundTrip(hs)
		token := []byte("\x00" + testProject + "\x00nohash")
		c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(token))), token...))
		c.ExpectClosed()
	})
}

func TestMetadataErrors(t *testing.T) {
	r := startRelay(t)
	f := func(name, password, topic string, wantCode int16, wantPartitions int) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			c := kafkatest.DialT(t, r.saslSSL, r.tls)
			if resp := c.SASLPlain(testProject, password); resp.ErrorCode != 0 {
				t.Fatalf("SASL: %d", resp.ErrorCode)
			}
			md := kmsg.NewPtrMetadataRequest()
			md.Version = 12
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = &topic
			md.Topics = append(md.Topics, mt)
			resp := c.RoundTrip(md).(*kmsg.MetadataResponse)
			if len(resp.Brokers) != 1 || resp.Brokers[0].Host != "127.0.0.1" {
				t.Fatalf("brokers %+v", resp.Brokers)
			}
			if got := resp.Topics[0]; got.ErrorCode != wantCode || len(got.Partitions) != wantPartitions {
				t.Fatalf("topic %s: error %d with %d partitions, want %d with %d", topic, got.ErrorCode, len(got.Partitions), wantCode, wantPartitions)
			}
		})
	}
	good := testAKID + "#" + testSecret
	f("known topic", good, testTopic4, 0, 4)
	f("json topic", good, testTopic+".json", 0, 2)
	f("unknown topic", good, "no-such-logstore", kerr.UnknownTopicOrPartition.Code, 0)
	f("wrong secret", testAKID+"#wrong", testTopic, kerr.TopicAuthorizationFailed.Code, 0)
	f("unknown key", "other#secret", testTopic, kerr.TopicAuthorizationFailed.Code, 0)
}

func TestProduceErrorsPerPartition(t *testing.T) {
	r := startRelay(t, func(o *Options) { o.MaxMessageBytes = 64 << 10 })
	good := kafkatest.RecordBatch("a", "b", "c")
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	truncated := good[:len(good)-5]
	badCodec := append([]byte(nil), good...)
	badCodec[22] |= 7 // attributes' low byte: codec 7, under a valid CRC
	batchtest.FixRecordBatchCRC(badCodec)
	oversized := kafkatest.RecordBatch(strings.Repeat("x", 70<<10))

	f := func(name string, version int16, batches map[int32][]byte, want map[int32]int16) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			c := kafkatest.DialT(t, r.plain, nil)
			resp := c.RoundTrip(kafkatest.ProduceRequest(version, 1, testTopic4, batches)).(*kmsg.ProduceResponse)
			got := kafkatest.PartitionErrors(resp)
			for p, code := range want {
				if got[p] != code {
					t.Errorf("partition %d: %v, want %v", p, kerr.ErrorForCode(got[p]), kerr.ErrorForCode(code))
				}
			}
		})
	}
	f("bad crc beside a good batch", 7, map[int32][]byte{0: badCRC, 1: good}, map[int32]int16{0: kerr.CorruptMessage.Code, 1: 0})
	f("truncated batch", 7, map[int32][]byte{0: truncated, 2: good}, map[int32]int16{0: kerr.CorruptMessage.Code, 2: 0})
	f("unknown codec", 7, map[int32][]byte{3: badCodec}, map[int32]int16{3: kerr.UnsupportedCompressionType.Code})
	f("oversized batch", 7, map[int32][]byte{1: oversized, 0: good}, map[int32]int16{1: kerr.MessageTooLarge.Code, 0: 0})
	f("partition out of range", 7, map[int32][]byte{5: good}, map[int32]int16{5: kerr.UnknownTopicOrPartition.Code})
	f("empty records", 7, map[int32][]byte{0: {}}, map[int32]int16{0: kerr.InvalidRecord.Code})

	t.Run("bad acks", func(t *testing.T) {
		c := kafkatest.DialT(t, r.plain, nil)
		resp := c.RoundTrip(kafkatest.ProduceRequest(7, 2, testTopic, map[int32][]byte{0: good})).(*kmsg.ProduceResponse)
		if got := kafkatest.PartitionErrors(resp)[0]; got != kerr.InvalidRequiredAcks.Code {
			t.Fatalf("acks=2: %v", kerr.ErrorForCode(got))
		}
	})
	t.Run("transactional", func(t *testing.T) {
		c := kafkatest.DialT(t, r.plain, nil)
		req := kafkatest.ProduceRequest(7, -1, testTopic, map[int32][]byte{0: good})
		txn := "txn"
		req.TransactionID = &txn
		resp := c.RoundTrip(req).(*kmsg.ProduceResponse)
		if got := kafkatest.PartitionErrors(resp)[0]; got != kerr.TransactionalIDAuthorizationFailed.Code {
			t.Fatalf("transactional: %v", kerr.ErrorForCode(got))
		}
	})
	t.Run("storage error", func(t *testing.T) {
		r := startRelay(t)
		r.app.SetFail(errors.New("disk on fire"))
		c := kafkatest.DialT(t, r.plain, nil)
		resp := c.RoundTrip(kafkatest.ProduceRequest(7, 1, testTopic, map[int32][]byte{0: good})).(*kmsg.ProduceResponse)
		if got := kafkatest.PartitionErrors(resp)[0]; got != kerr.KafkaStorageError.Code {
			t.Fatalf("failing appender: %v", kerr.ErrorForCode(got))
		}
	})
}

// Pipelined requests, acks=0 among them, are answered in request order and
// acks=0 produces nothing on the wire.
func TestPipelinedResponsesInOrder(t *testing.T) {
	r := startRelay(t, func(o *Options) { o.MaxInFlightPerConn = 4 })
	c := kafkatest.DialT(t, r.plain, nil)
	type sent struct {
		corr int32
		req  kmsg.Request
	}
	var want []sent
	for i := 0; i < 40; i++ {
		var req kmsg.Request
		switch i % 3 {
		case 0:
			req = kafkatest.ProduceRequest(7, 1, testTopic, map[int32][]byte{0: kafkatest.RecordBatch("v")})
		case 1:
			req = kafkatest.ProduceRequest(7, 0, testTopic, map[int32][]byte{1: kafkatest.RecordBatch("silent")})
		default:
			req = kmsg.NewPtrMetadataRequest()
		}
		corr := c.Send(req)
		if i%3 != 1 {
			want = append(want, sent{corr, req})
		}
	}
	var lastOffset int64 = -1
	for _, w := range want {
		resp := c.Read(w.corr, w.req)
		if p, ok := resp.(*kmsg.ProduceResponse); ok {
			off := p.Topics[0].Partitions[0].BaseOffset
			if off != lastOffset+1 {
				t.Fatalf("base offset %d after %d", off, lastOffset)
			}
			lastOffset = off
		}
	}
	if n := len(r.entries(testTopic, 1)); n != 13 {
		t.Fatalf("acks=0 partition holds %d entries, want 13", n)
	}
}
