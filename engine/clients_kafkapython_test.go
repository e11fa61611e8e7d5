package engine

// kafka-python (Debian's python3-kafka, 2.0.2) against the relay: PLAINTEXT
// and SASL_SSL with PLAIN AccessKeyId#AccessKeySecret, acks 0, 1 and all;
// relay users over SCRAM-SHA-256/512 on SASL_PLAINTEXT and SASL_SSL (its
// SCRAM goes over SaslHandshake v1 and then raw tokens, the v0 path,
// not SaslAuthenticate); and the errors it reports. kafka-python sets no
// producer ID (it has no idempotence) and stamps each record with the
// timestamp it is given.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// clPyRecords turns sent into kafka-python's records, each with its
// partition, key, headers and timestamp.
func clPyRecords(sent []clSent) []kafkatest.PyRecord {
	out := make([]kafkatest.PyRecord, len(sent))
	for i, s := range sent {
		key, p := string(s.Key), s.Partition
		r := kafkatest.PyRecord{ID: i, Value: string(s.Value), Key: &key, Partition: &p, TimestampMS: s.Time.UnixMilli()}
		for _, h := range s.Headers {
			r.Headers = append(r.Headers, [2]string{h.Key, string(h.Value)})
		}
		out[i] = r
	}
	return out
}

// clPyProduce sends sent with cfg and fails the test unless every record
// was acknowledged.
func clPyProduce(t testing.TB, cfg kafkatest.PyConfig, sent []clSent) kafkatest.PyResult {
	t.Helper()
	res := kafkatest.KafkaPythonProduce(t, cfg, clPyRecords(sent), 2*clTimeout)
	if res.Acked() != len(sent) || !res.Done || res.Fatal != "" {
		t.Fatalf("want %d records acknowledged; %s", len(sent), res)
	}
	return res
}

func TestClientsKafkaPython(t *testing.T) {
	kafkatest.KafkaPython(t)
	t.Parallel()
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	f := func(t *testing.T, l clListener, acks int, compression string, codec int8) {
		t.Parallel()
		tag := t.Name()
		sent := clMakeRecords(tag, 16, 4, time.Now())
		cfg := r.listener(l, clPassword).KafkaPython(testTopic4)
		cfg.Acks, cfg.Compression, cfg.ClientID = acks, compression, "kafka-python-test"
		res := clPyProduce(t, cfg, sent)
		t.Logf("%d records acknowledged, max wait %v", res.Acked(), res.MaxWait().Round(time.Microsecond))
		r.checkStored(t, testTopic4, 4, tag, sent, clExpect{magic: 2, codec: codec, headers: true, timestamps: 'x', clientID: "kafka-python-test"})
	}
	for _, l := range []clListener{clPlaintext, clSASLSSL} {
		for _, acks := range []int{1, -1, 0} {
			t.Run(fmt.Sprintf("%s/acks=%d", l.name, acks), func(t *testing.T) { f(t, l, acks, "", clCodecNone) })
		}
		t.Run(l.name+"/gzip", func(t *testing.T) { f(t, l, -1, "gzip", clCodecGzip) })
	}
	// The relay cannot tell a wrong AccessKey secret at login (nor can
	// SLS's endpoint): Metadata refuses the topic. kafka-python never
	// reports that for its only topic (see clPyOnlyTopicRefused).
	t.Run("SASL_SSL/wrong-accesskey", func(t *testing.T) {
		t.Parallel()
		cfg := r.listener(clSASLSSL, testAKID+"#not-the-secret").KafkaPython(testTopic)
		cfg.MaxBlockMS = 2000
		res := kafkatest.KafkaPythonProduce(t, cfg, clPyRecords(clMakeRecords(t.Name(), 2, 1, time.Now())), 2*clTimeout)
		clPyOnlyTopicRefused(t, res, 2)
		if n := r.caseCount(t, testTopic, 2, t.Name()); n != 0 {
			t.Fatalf("%d records stored", n)
		}
		if strings.Contains(res.Log+res.Fatal, "not-the-secret") {
			t.Fatal("the password appears in kafka-python's output, which a failing test shows")
		}
	})
}

// clPyOnlyTopicRefused checks what kafka-python 2.0.2 reports when
// Metadata refuses its only topic (TOPIC_AUTHORIZATION_FAILED): nothing.
// kafka/cluster.py update_metadata treats a one-topic response with an
// error as a failed update and returns before it records the topic as
// unauthorized, so producer.send asks for Metadata again and again until
// max_block_ms and raises KafkaTimeoutError. (With a second, permitted
// topic in the request it does raise TopicAuthorizationFailedError.)
func clPyOnlyTopicRefused(t testing.TB, res kafkatest.PyResult, n int) {
	t.Helper()
	failed := res.Failed()
	if res.Acked() != 0 || len(failed) != n {
		t.Fatalf("want %d records failed; %s", n, res)
	}
	for _, a := range failed {
		if !strings.HasPrefix(a.Error, "KafkaTimeoutError") {
			t.Fatalf("record %d: %s; kafka-python 2.0.2 times out on Metadata for its only topic when refused. Did the library change?", a.ID, a.Error)
		}
	}
}

// TestRelayUsersKafkaPython logs kafka-python in as relay users.
func TestRelayUsersKafkaPython(t *testing.T) {
	kafkatest.KafkaPython(t)
	r := startUserRelay(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(r.logs.String())
		}
	})
	// user is how kafka-python reaches l as user with mech.
	user := func(l clListener, mech, name, password, topic string) kafkatest.PyConfig {
		cfg := r.listener(l, "").KafkaPython(topic)
		cfg.Mechanism, cfg.User, cfg.Password = mech, name, password
		return cfg
	}
	for _, l := range []clListener{clSASLText, clSASLSSL} {
		for _, mech := range []string{SCRAMSHA256, SCRAMSHA512} {
			t.Run(l.name+"/"+mech, func(t *testing.T) {
				t.Parallel()
				sent := clMakeRecords(t.Name(), 12, 4, time.Now())
				clPyProduce(t, user(l, mech, hostB, hostBPassword, testTopic4), sent)
				r.waitCase(t, testTopic4, 4, t.Name(), len(sent))
				r.checkHeldKey(t, testTopic4, 4, t.Name())
			})
		}
	}
	t.Run("refusals", func(t *testing.T) {
		for _, mech := range []string{SCRAMSHA256, SCRAMSHA512} {
			t.Run(mech+"/wrong-password", func(t *testing.T) {
				// kafka-python's producer probes the broker's version
				// when it starts; the failed login ends that probe.
				before := userMetricsFor(hostA).failures.Get()
				cfg := user(clSASLText, mech, hostA, "not-"+hostAPassword, testTopic)
				res := kafkatest.KafkaPythonProduce(t, cfg, clPyRecords(clMakeRecords(t.Name(), 3, 1, time.Now())), 2*clTimeout)
				if res.Acked() != 0 || !strings.Contains(res.Fatal, "NoBrokersAvailable") {
					t.Fatalf("want a producer that cannot start; %s", res)
				}
				if userMetricsFor(hostA).failures.Get() == before {
					t.Fatal("the relay counted no failed login: the producer failed for another reason")
				}
				if n := r.caseCount(t, testTopic, 2, t.Name()); n != 0 {
					t.Fatalf("%d records stored", n)
				}
			})
			// First a permitted topic, then one outside the rights:
			// kafka-python's Metadata request names both, and it
			// raises TopicAuthorizationFailedError for the second.
			t.Run(mech+"/topic-outside-rights", func(t *testing.T) {
				recs := clPyRecords(clMakeRecords(t.Name(), 4, 1, time.Now()))
				recs[0].Topic = testTopic
				for i := range recs[1:] {
					recs[1+i].Topic, recs[1+i].Partition = testTopic4, nil
				}
				res := kafkatest.KafkaPythonProduce(t, user(clSASLSSL, mech, hostA, hostAPassword, testTopic), recs, 2*clTimeout)
				if len(res.Acks) != 4 || res.Acked() != 1 || slices.ContainsFunc(res.Failed(), func(a kafkatest.PyAck) bool { return a.ID == 0 }) {
					t.Fatalf("want the first record acknowledged, the other 3 failed; %s", res)
				}
				for _, a := range res.Failed() {
					if a.ErrorName != "TOPIC_AUTHORIZATION_FAILED" {
						t.Fatalf("record %d: %s (%s), want TOPIC_AUTHORIZATION_FAILED", a.ID, a.Error, a.ErrorName)
					}
				}
				if n := r.caseCount(t, testTopic4, 4, t.Name()); n != 0 {
					t.Fatalf("%d records stored outside the rights", n)
				}
			})
			t.Run(mech+"/only-topic-outside-rights", func(t *testing.T) {
				cfg := user(clSASLSSL, mech, hostA, hostAPassword, testTopic4)
				cfg.MaxBlockMS = 2000
				res := kafkatest.KafkaPythonProduce(t, cfg, clPyRecords(clMakeRecords(t.Name(), 2, 1, time.Now())), 2*clTimeout)
				clPyOnlyTopicRefused(t, res, 2)
				if n := r.caseCount(t, testTopic4, 4, t.Name()); n != 0 {
					t.Fatalf("%d records stored outside the rights", n)
				}
			})
		}
	})
}
