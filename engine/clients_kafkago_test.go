package engine

// segmentio/kafka-go's Writer against the relay: each compression it
// offers, acks 1/-1/0, over PLAINTEXT and SASL_SSL (SASL PLAIN through its
// Transport); then the errors it must see.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
)

func clKafkaGoCodec(c int8) kafka.Compression {
	switch c {
	case clCodecGzip:
		return kafka.Gzip
	case clCodecSnappy:
		return kafka.Snappy
	case clCodecLz4:
		return kafka.Lz4
	case clCodecZstd:
		return kafka.Zstd
	}
	return 0
}

// clKafkaGoWriter returns a Writer to r through l as project/password that
// sends each message to its Partition field, with bounded timeouts.
func clKafkaGoWriter(t testing.TB, r *clRelay, l clListener, password string) *kafka.Writer {
	tr := &kafka.Transport{DialTimeout: 5 * time.Second, ClientID: "kafka-go-test", MetadataTTL: time.Second}
	if l.tls {
		tr.TLS = r.tls.Clone()
	}
	if l.sasl {
		tr.SASL = plain.Mechanism{Username: testProject, Password: password}
	}
	w := &kafka.Writer{
		Addr:            kafka.TCP(r.addr(l)),
		Balancer:        kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition }),
		BatchTimeout:    5 * time.Millisecond,
		MaxAttempts:     2,
		WriteBackoffMin: 10 * time.Millisecond,
		WriteBackoffMax: 50 * time.Millisecond,
		ReadTimeout:     10 * time.Second,
		WriteTimeout:    10 * time.Second,
		Transport:       tr,
	}
	t.Cleanup(func() {
		w.Close()
		tr.CloseIdleConnections()
	})
	return w
}

func clKafkaGoMessages(topic string, sent []clSent) []kafka.Message {
	msgs := make([]kafka.Message, len(sent))
	for i, s := range sent {
		m := kafka.Message{Topic: topic, Partition: int(s.Partition), Key: s.Key, Value: s.Value, Time: s.Time}
		for _, h := range s.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		msgs[i] = m
	}
	return msgs
}

// TestClientsKafkaGo produces with kafka-go's Writer with each codec, over
// PLAINTEXT and SASL_SSL, acks 1, -1 and 0 in turn, and checks what the
// appender received.
func TestClientsKafkaGo(t *testing.T) {
	t.Parallel()
	const n = 20
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	f := func(t *testing.T, l clListener, codec int8, acks kafka.RequiredAcks) {
		t.Parallel()
		w := clKafkaGoWriter(t, r, l, clPassword)
		w.Compression = clKafkaGoCodec(codec)
		w.RequiredAcks = acks
		sent := clMakeRecords(t.Name(), n, 4, time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), clTimeout)
		defer cancel()
		if err := w.WriteMessages(ctx, clKafkaGoMessages(testTopic4, sent)...); err != nil {
			t.Fatalf("produce: %v", err)
		}
		r.checkStored(t, testTopic4, 4, t.Name(), sent, clExpect{magic: 2, codec: codec, headers: true, timestamps: 'x', clientID: "kafka-go-test"})
	}
	acks := []kafka.RequiredAcks{kafka.RequireOne, kafka.RequireAll, kafka.RequireNone}
	for _, l := range []clListener{clPlaintext, clSASLSSL} {
		for i, codec := range clAllCodecs {
			a := acks[i%len(acks)]
			t.Run(fmt.Sprintf("%s/%s/acks=%d", l.name, clCodecNames[codec], a), func(t *testing.T) { f(t, l, codec, a) })
		}
	}
}

// TestClientsKafkaGoErrors checks the errors kafka-go's Writer reports.
func TestClientsKafkaGoErrors(t *testing.T) {
	t.Parallel()
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	f := func(t *testing.T, l clListener, password, topic string, valueSize int, want kafka.Error) {
		t.Parallel()
		w := clKafkaGoWriter(t, r, l, password)
		w.RequiredAcks = kafka.RequireAll
		w.BatchBytes = 4 << 20 // let the relay, not kafka-go, judge the size
		ctx, cancel := context.WithTimeout(context.Background(), clTimeout)
		defer cancel()
		err := w.WriteMessages(ctx, kafka.Message{Topic: topic, Partition: 1, Value: clValue(t.Name(), valueSize)})
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == 1 {
			err = werrs[0] // WriteErrors does not unwrap
		}
		if !errors.Is(err, want) {
			t.Fatalf("produce: got error %v, want %v", err, want)
		}
		logstore, _ := splitTopic(topic)
		if got := r.caseCount(t, logstore, 4, t.Name()); got != 0 {
			t.Fatalf("relay holds %d records of this case, want none", got)
		}
	}
	for _, l := range []clListener{clPlaintext, clSASLSSL} {
		t.Run(l.name+"/unknown topic", func(t *testing.T) {
			f(t, l, clPassword, "no-such-logstore", 10, kafka.UnknownTopicOrPartition)
		})
		t.Run(l.name+"/message too large", func(t *testing.T) {
			f(t, l, clPassword, testTopic, 1_000_100, kafka.MessageSizeTooLarge)
		})
	}
	t.Run("SASL_SSL/wrong password", func(t *testing.T) {
		// kafka-go's Transport looks topics up in a Metadata listing of
		// all topics, which (as with a Kafka broker's ACLs) holds none
		// the key may not write; a named topic would get
		// TOPIC_AUTHORIZATION_FAILED, as kgo and sarama see.
		f(t, clSASLSSL, testAKID+"#wrong", testTopic, 10, kafka.UnknownTopicOrPartition)
	})
	t.Run("SASL_SSL/malformed password", func(t *testing.T) {
		f(t, clSASLSSL, "demo-akid-demo-aksecret", testTopic, 10, kafka.SASLAuthenticationFailed)
	})
}
