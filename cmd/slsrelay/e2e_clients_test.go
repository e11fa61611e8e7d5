package main

// End to end, field by field: real Kafka clients (franz-go, IBM/sarama at
// the message formats of Kafka 0.10 and 0.8, kcat) write through the
// relay's listeners; what the stand-in received is read back with the
// SDK's GetCursor/PullLogs and compared with what was sent, record by
// record: the fields (content, or the JSON expansion for "<logstore>.json"
// topics and the data-parse-format header), the key (dropped, or a field
// with sls.key_field), and __time__ (the record timestamp, or the receive
// time when there is none or SLS would refuse it).

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
)

// recOpts says what a client can send, and so what its records carry.
type recOpts struct {
	partitions int32
	// jsonTopic: written to "<logstore>.json".
	jsonTopic bool
	// headers: the format carries headers (magic 2): some records ask for
	// JSON with data-parse-format (in either case), some carry others.
	headers bool
	// allJSONHeader: every record carries data-parse-format: json (kcat
	// sets its headers for the whole run).
	allJSONHeader bool
	// timestamps: the test sets each record's timestamp (magic 1 and 2);
	// some are in SLS's window, some 8 days old, some an hour ahead.
	timestamps bool
	// keys: half the records have a key.
	keys bool
	// keyField is the relay's sls.key_field.
	keyField string
}

// recordValues are the shapes of value a record takes, by index: text,
// a JSON object with every kind of value, invalid JSON, a JSON array, an
// object with surrounding blanks, an object followed by text. Each holds
// the id (%[1]s).
var recordValues = []string{
	`%[1]s plain text, "quoted", with a tab:	and ünïcödé`,
	`{"id":"%[1]s","n":1.50e3,"neg":-0,"ok":true,"no":false,"nil":null,"s":"a\"b\\n\u00e9\t","obj":{"k": "v", "arr": [1, 2, {"x": null}]},"":"empty key","dup":1,"list":[ "a" , 1 ],"dup":"last"}`,
	`{"id":"%[1]s", "broken": }`,
	`["%[1]s", 1, {"a": 2}]`,
	`  {"id": "%[1]s", "msg": "hello world", "deep": {"a": {"b": {"c": [ ]}}}}  `,
	`{"id":"%[1]s"} trailing text`,
}

// makeRecords returns n records (ids from first) with their expected logs.
func makeRecords(first, n int, o recOpts) []sent {
	now := time.Now()
	base := now.Add(-time.Hour).Truncate(time.Millisecond)
	recs := make([]sent, n)
	for i := range recs {
		id := e2eID(first + i)
		s := sent{ID: id, Partition: int32(i) % o.partitions, Value: fmt.Appendf(nil, recordValues[i%len(recordValues)], id)}
		jsonMode := o.jsonTopic || o.allJSONHeader
		if o.headers {
			switch i % 4 {
			case 1:
				s.Headers = append(s.Headers, kgo.RecordHeader{Key: "data-parse-format", Value: []byte("json")})
				jsonMode = true
			case 2:
				s.Headers = append(s.Headers, kgo.RecordHeader{Key: "Data-Parse-Format", Value: []byte("JSON")}, kgo.RecordHeader{Key: "trace", Value: []byte("t")})
				jsonMode = true
			case 3:
				s.Headers = append(s.Headers, kgo.RecordHeader{Key: "data-parse-format", Value: []byte("text")})
			}
		}
		if o.keys && i%2 == 0 {
			s.Key = []byte("key-" + id)
		}
		if o.timestamps {
			switch i % 5 {
			case 3:
				s.Time = now.Add(-8 * 24 * time.Hour) // older than SLS keeps: the receive time
			case 4:
				s.Time = now.Add(time.Hour) // too far ahead: the receive time
			default:
				s.Time, s.Exact = base.Add(time.Duration(i)*time.Millisecond+time.Duration(i%3)*100*time.Microsecond), true
			}
		}
		s.Want = expectFields(s.Value, jsonMode, s.Key, o.keyField)
		recs[i] = s
	}
	return recs
}

// TestE2EClients writes with every message format and codec through both
// listeners and checks each record's log as read back through the SDK.
func TestE2EClients(t *testing.T) {
	t.Parallel()
	n := e2eRecordsPerCase
	r := startTestRelay(t)
	store := 0
	// f runs one case on a logstore of its own: produce makes the client,
	// writes recs to topic and waits for the acks.
	f := func(name string, o recOpts, produce func(t *testing.T, topic string, recs []sent) error) {
		store++
		logstore := e2eStore(store)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o.partitions = 2
			recs := makeRecords(0, n, o)
			topic := logstore
			if o.jsonTopic {
				topic += ".json"
			}
			from := time.Now()
			if err := produce(t, topic, recs); err != nil {
				t.Fatalf("produce to %s: %v", topic, err)
			}
			setWindow(recs, from, time.Now())
			r.waitLogs(t, relaytest.Project, logstore, n, e2eTimeout)
			time.Sleep(50 * time.Millisecond) // a stray duplicate would show now
			r.checkDelivered(t, logstore, recs, true)
		})
	}

	kgoCase := func(l listener, codec kgo.CompressionCodec) func(*testing.T, string, []sent) error {
		return func(t *testing.T, topic string, recs []sent) error {
			cl := newKgo(t, append(r.kgoOpts(l, relaytest.Password), kgo.ProducerBatchCompression(codec))...)
			return produceKgo(t, cl, topic, recs)
		}
	}
	// franz-go: RecordBatch v2 (headers, timestamps), every codec.
	v2 := recOpts{headers: true, timestamps: true, keys: true}
	v2json := recOpts{jsonTopic: true, headers: true, timestamps: true, keys: true}
	f("kgo/none/PLAINTEXT", v2, kgoCase(lPlain, kgo.NoCompression()))
	f("kgo/gzip/SASL_SSL/json-topic", v2json, kgoCase(lSASLSSL, kgo.GzipCompression()))
	f("kgo/snappy/PLAINTEXT/json-topic", v2json, kgoCase(lPlain, kgo.SnappyCompression()))
	f("kgo/lz4/SASL_SSL", v2, kgoCase(lSASLSSL, kgo.Lz4Compression()))
	f("kgo/zstd/PLAINTEXT", v2, kgoCase(lPlain, kgo.ZstdCompression()))
	f("kgo/zstd/SASL_SSL/json-topic", v2json, kgoCase(lSASLSSL, kgo.ZstdCompression()))

	saramaCase := func(l listener, v sarama.KafkaVersion, codec sarama.CompressionCodec) func(*testing.T, string, []sent) error {
		return func(t *testing.T, topic string, recs []sent) error {
			cfg := r.saramaConfig(l, v, relaytest.Password)
			cfg.Producer.Compression = codec
			return produceSarama(t, r.addr(l), cfg, topic, recs)
		}
	}
	// sarama 0.10.2: MessageSet magic 1 (timestamps, no headers).
	v1 := recOpts{timestamps: true, keys: true}
	v1json := recOpts{jsonTopic: true, timestamps: true, keys: true}
	f("sarama-0.10.2/gzip/PLAINTEXT/json-topic", v1json, saramaCase(lPlain, sarama.V0_10_2_0, sarama.CompressionGZIP))
	f("sarama-0.10.2/snappy/SASL_SSL", v1, saramaCase(lSASLSSL, sarama.V0_10_2_0, sarama.CompressionSnappy))
	f("sarama-0.10.2/lz4/PLAINTEXT", v1, saramaCase(lPlain, sarama.V0_10_2_0, sarama.CompressionLZ4))
	f("sarama-0.10.2/lz4/SASL_SSL/json-topic", v1json, saramaCase(lSASLSSL, sarama.V0_10_2_0, sarama.CompressionLZ4))
	// sarama 0.8.2: MessageSet magic 0 (no timestamps: the receive time).
	v0 := recOpts{keys: true}
	v0json := recOpts{jsonTopic: true, keys: true}
	f("sarama-0.8.2/none/SASL_SSL/json-topic", v0json, saramaCase(lSASLSSL, sarama.V0_8_2_0, sarama.CompressionNone))
	f("sarama-0.8.2/gzip/PLAINTEXT", v0, saramaCase(lPlain, sarama.V0_8_2_0, sarama.CompressionGZIP))
	f("sarama-0.8.2/snappy/PLAINTEXT/json-topic", v0json, saramaCase(lPlain, sarama.V0_8_2_0, sarama.CompressionSnappy))
	f("sarama-0.8.2/snappy/SASL_SSL", v0, saramaCase(lSASLSSL, sarama.V0_8_2_0, sarama.CompressionSnappy))

	// kcat (librdkafka): RecordBatch v2 stamped by the client, headers for
	// the whole run, no keys.
	kcatCase := func(l listener, codec string, headers ...string) func(*testing.T, string, []sent) error {
		return func(t *testing.T, topic string, recs []sent) error {
			// kcat picks partitions itself; the test's are not used.
			return r.produceKcat(t, l, codec, topic, headers, recs)
		}
	}
	f("kcat/gzip/SASL_SSL/json-header", recOpts{allJSONHeader: true}, kcatCase(lSASLSSL, "gzip", "data-parse-format=json"))
	f("kcat/zstd/PLAINTEXT/json-topic", recOpts{jsonTopic: true}, kcatCase(lPlain, "zstd"))
	f("kcat/lz4/PLAINTEXT", recOpts{}, kcatCase(lPlain, "lz4", "trace=x"))
}

// TestE2EKeyField: with sls.key_field set, a record's key becomes that
// field, after the value's fields; records without a key get none.
func TestE2EKeyField(t *testing.T) {
	t.Parallel()
	const keyField = "__key__"
	n := e2eRecordsPerCase
	r := startTestRelay(t, func(c *relay.Config) { c.SLS.Convert.KeyField = keyField })
	f := func(name, logstore string, o recOpts, produce func(t *testing.T, topic string, recs []sent) error) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o.partitions, o.keys, o.keyField = 2, true, keyField
			recs := makeRecords(0, n, o)
			// A null value (the id in the key) is content "", and an empty
			// key is not a null one: its field is there, empty.
			idNull, idEmpty := e2eID(n), e2eID(n+1)
			recs = append(recs,
				sent{ID: idNull, Key: []byte(idNull), Want: []slsfake.KV{{Key: "content"}, {Key: keyField, Value: idNull}}},
				sent{ID: idEmpty, Partition: 1, Key: []byte{}, Value: []byte(idEmpty + " empty key"),
					Want: []slsfake.KV{{Key: "content", Value: idEmpty + " empty key"}, {Key: keyField}}})
			topic := logstore
			if o.jsonTopic {
				topic += ".json"
			}
			from := time.Now()
			if err := produce(t, topic, recs); err != nil {
				t.Fatalf("produce: %v", err)
			}
			setWindow(recs, from, time.Now())
			withKey := 0
			for _, s := range recs {
				if strings.Contains(fmt.Sprint(s.Want), keyField) {
					withKey++
				}
			}
			if withKey == 0 || withKey == len(recs) {
				t.Fatalf("%d of %d records expect a key field: the case tests nothing", withKey, len(recs))
			}
			r.waitLogs(t, relaytest.Project, logstore, len(recs), e2eTimeout)
			r.checkDelivered(t, logstore, recs, true)
		})
	}
	f("kgo/json-topic", e2eStore(1), recOpts{jsonTopic: true, headers: true, timestamps: true}, func(t *testing.T, topic string, recs []sent) error {
		return produceKgo(t, newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...), topic, recs)
	})
	f("sarama-0.10.2/SASL_SSL", e2eStore(2), recOpts{timestamps: true}, func(t *testing.T, topic string, recs []sent) error {
		cfg := r.saramaConfig(lSASLSSL, sarama.V0_10_2_0, relaytest.Password)
		cfg.Producer.Compression = sarama.CompressionGZIP
		return produceSarama(t, r.SASLSSL.Addr, cfg, topic, recs)
	})
}
