package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

func refusalCount(reason, listener, project string) uint64 {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_refusals_total{reason=%q,listener=%q,project=%q}`, reason, listener, project)).Get()
}

// startLoggedRelay is startRelay with its log lines collected.
func startLoggedRelay(t *testing.T) (*testRelay, *kafkatest.LockedBuffer) {
	logs := &kafkatest.LockedBuffer{}
	r := startRelay(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	return r, logs
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A flood of malformed connections from one address (the PLAINTEXT
// listener's connections write as its configured principal's project): every one is counted
// by reason, and the log gets one line per (address, reason) per interval;
// the next interval's line says how many were suppressed.
func TestRefusalFloodIsCountedAndLogBounded(t *testing.T) {
	r, logs := startLoggedRelay(t)
	r.srv.refusals.mu.Lock() // allowLine reads it under the lock
	r.srv.refusals.interval = 2 * time.Second
	r.srv.refusals.mu.Unlock()
	bad := binary.BigEndian.AppendUint32(nil, 10)
	bad = append(bad, 0x03, 0xe8, 0, 0, 0, 0, 0, 1, 0xff, 0xff) // API key 1000, null client id
	tlsHello := []byte{0x16, 0x03, 0x01, 0x02, 0x00}            // a TLS ClientHello on a plaintext port: a 369 MB frame

	flood := func(n int, frame []byte) {
		t.Helper()
		for i := 0; i < n; i++ {
			c := kafkatest.DialT(t, r.plain, nil)
			c.Write(frame)
			c.ExpectClosed()
		}
	}
	protocol0 := refusalCount(RefusalProtocol, "PLAINTEXT", testProject)
	oversized0 := refusalCount(RefusalOversizedFrame, "PLAINTEXT", testProject)
	flood(200, bad)
	flood(100, tlsHello)
	waitFor(t, "the refusals counted", func() bool {
		p, o := refusalCount(RefusalProtocol, "PLAINTEXT", testProject)-protocol0, refusalCount(RefusalOversizedFrame, "PLAINTEXT", testProject)-oversized0
		if p > 200 || o > 100 {
			t.Fatalf("counted %d protocol errors and %d oversized frames, want 200 and 100", p, o)
		}
		return p == 200 && o == 100
	})
	lines := func(reason string) []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "reason="+reason) {
				out = append(out, l)
			}
		}
		return out
	}
	f := func(reason string, wantLines int, wantSuppressed string) {
		t.Helper()
		got := lines(reason)
		if len(got) != wantLines {
			t.Fatalf("%s: %d log lines, want %d:\n%s", reason, len(got), wantLines, strings.Join(got, "\n"))
		}
		last := got[len(got)-1]
		for _, want := range []string{"client=127.0.0.1:", "fix=", "suppressed_before=" + wantSuppressed} {
			if !strings.Contains(last, want) {
				t.Fatalf("%s: line %q lacks %q", reason, last, want)
			}
		}
	}
	f(RefusalProtocol, 1, "0")
	f(RefusalOversizedFrame, 1, "0")

	time.Sleep(2 * time.Second)
	flood(1, bad)
	waitFor(t, "the next interval's line", func() bool { return len(lines(RefusalProtocol)) == 2 })
	f(RefusalProtocol, 2, "199")

	recent := r.srv.RecentRefusals()
	if len(recent) != recentRefusals || recent[0].Reason != RefusalProtocol || !strings.Contains(recent[0].Detail, "API key 1000") {
		t.Fatalf("recent refusals: %d, newest %+v", len(recent), recent[0])
	}
}

// The commonest shipper mistakes come back through Metadata and SASL:
// each is counted under its reason and project and logged with the
// client's id and what to fix, never the secret.
func TestShipperMistakesAreCountedAndLogged(t *testing.T) {
	r, logs := startLoggedRelay(t)
	f := func(name, user, password, topic, reason, project string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			before := refusalCount(reason, "SASL_SSL", project)
			c := kafkatest.DialT(t, r.saslSSL, r.tls)
			if resp := c.SASLPlain(user, password); resp.ErrorCode != 0 {
				if reason != RefusalAuthentication {
					t.Fatalf("SASL: %d", resp.ErrorCode)
				}
			} else {
				md := kmsg.NewPtrMetadataRequest()
				md.Version = 12
				mt := kmsg.NewMetadataRequestTopic()
				mt.Topic = &topic
				md.Topics = append(md.Topics, mt)
				if resp := c.RoundTrip(md).(*kmsg.MetadataResponse); resp.Topics[0].ErrorCode == 0 {
					t.Fatal("the mistake was not refused")
				}
			}
			waitFor(t, "the refusal counted", func() bool { return refusalCount(reason, "SASL_SSL", project) == before+1 })
			line := ""
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "reason="+reason) {
					line = l
				}
			}
			for _, want := range []string{"client_id=" + kafkatest.ClientID, "fix=", "listener=SASL_SSL"} {
				if !strings.Contains(line, want) {
					t.Fatalf("log line %q lacks %q", line, want)
				}
			}
		})
	}
	good := testAKID + "#" + testSecret
	f("wrong secret", testProject, testAKID+"#not-the-secret", testTopic, RefusalAuthorization, testProject)
	f("unknown logstore", testProject, good, "no-such-logstore", RefusalUnknownTopic, testProject)
	f("malformed password", testProject, "no-hash-sign", testTopic, RefusalAuthentication, "")
	if strings.Contains(logs.String(), testSecret) || strings.Contains(logs.String(), "not-the-secret") {
		t.Fatal("a secret reached the log")
	}
}

// refusalOf classifies every error code a shipper can be answered with.
func TestRefusalOf(t *testing.T) {
	f := func(code int16, err error, want string) {
		t.Helper()
		if got := refusalOf(code, err); got != want {
			t.Fatalf("refusalOf(%d, %v) = %q, want %q", code, err, got, want)
		}
	}
	f(0, nil, "")
	f(kerr.TopicAuthorizationFailed.Code, nil, RefusalAuthorization)
	f(kerr.UnknownTopicOrPartition.Code, fmt.Errorf("LogStoreNotExist: logstore x does not exist: %w", kerr.UnknownTopicOrPartition), RefusalUnknownTopic)
	f(kerr.UnknownTopicOrPartition.Code, fmt.Errorf("ProjectNotExist: The Project does not exist : p: %w", kerr.UnknownTopicOrPartition), RefusalUnknownProject)
	f(kerr.MessageTooLarge.Code, nil, RefusalTooLarge)
	f(kerr.CorruptMessage.Code, nil, RefusalCorruptBatch)
	f(kerr.InvalidRequiredAcks.Code, nil, RefusalProtocol)
	f(kerr.LeaderNotAvailable.Code, nil, RefusalUnavailable)
	f(kerr.KafkaStorageError.Code, nil, RefusalUnavailable)
}

// Many addresses at once: the lines of all together stay under the global
// limit, and the next line let through counts the ones suppressed.
func TestRefusalLogGlobalBound(t *testing.T) {
	l := newRefusalLog()
	l.interval, l.global = 50*time.Millisecond, &logLimiter{limit: 100, window: 50 * time.Millisecond}
	now := time.Now()
	logged := 0
	for i := 0; i < 500; i++ {
		if ok, _ := l.admit(Refusal{Time: now, Address: fmt.Sprintf("10.0.%d.%d:1234", i/256, i%256), Reason: RefusalMalformedFrame}); ok {
			logged++
		}
	}
	if logged != 100 {
		t.Fatalf("%d lines for 500 addresses, want 100", logged)
	}
	time.Sleep(60 * time.Millisecond)
	if ok, suppressed := l.admit(Refusal{Time: time.Now(), Address: "10.9.9.9:1", Reason: RefusalMalformedFrame}); !ok || suppressed != 400 {
		t.Fatalf("next line: %v, suppressed %d; want true, 400", ok, suppressed)
	}
	if n := len(l.list()); n != recentRefusals {
		t.Fatalf("%d recent refusals kept, want %d", n, recentRefusals)
	}
}

// A refusal's detail carries what the catalog said, without the Kafka
// error the detail already names.
func TestWithCause(t *testing.T) {
	f := func(err error, want string) {
		t.Helper()
		if got := withCause("Metadata for topic \"x\": UNKNOWN_TOPIC_OR_PARTITION", err); got != want {
			t.Fatalf("withCause(%v) = %q, want %q", err, got, want)
		}
	}
	base := "Metadata for topic \"x\": UNKNOWN_TOPIC_OR_PARTITION"
	f(nil, base)
	f(kerr.UnknownTopicOrPartition, base)
	f(fmt.Errorf("LogStoreNotExist: logstore x does not exist: %w", kerr.UnknownTopicOrPartition), base+" (LogStoreNotExist: logstore x does not exist)")
	f(errors.New("catalog not ready"), base+" (catalog not ready)")
	f(errors.New("SignatureNotMatch: Signature Zm9vYmFyYmF6cXV4/+== not matched."), base+" (SignatureNotMatch: Signature … not matched.)")
}

// The write proof's error reaches a Produce refusal's detail as the
// client's error message: the signature SLS quotes is left out there too.
func TestProduceRefusalDetailWithoutSignature(t *testing.T) {
	r := startRelay(t)
	c := kafkatest.DialT(t, r.plain, nil)
	c.RoundTrip(kmsg.NewPtrApiVersionsRequest())
	var sess *session
	r.srv.sessions.Range(func(k, _ any) bool { sess = k.(*session); return false })
	if sess == nil {
		t.Fatal("no session for the connection")
	}
	msg := "SignatureNotMatch: Signature Zm9vYmFyYmF6cXV4/+== not matched."
	p := kmsg.NewProduceResponseTopicPartition()
	refuse(&p, 8, kerr.TopicAuthorizationFailed.Code, errors.New(msg))
	sess.refusedPartition("t", p, nil)
	var sh Shipper
	sess.shipper.snapshot(&sh, time.Now())
	if sh.LastError == nil || strings.Contains(sh.LastError.Detail, "Zm9v") || !strings.Contains(sh.LastError.Detail, "Signature … not matched") {
		t.Fatalf("refusal detail %+v, want SLS's message without the signature", sh.LastError)
	}
}

// Produce refusals are counted per partition under their reason, and the
// connection's last error in the shipper view says which.
func TestProduceRefusalsCounted(t *testing.T) {
	r := startRelay(t, func(o *Options) { o.MaxMessageBytes = 64 << 10 })
	good := kafkatest.RecordBatch("a")
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	oversized := kafkatest.RecordBatch(strings.Repeat("x", 70<<10))
	f := func(name string, batches map[int32][]byte, reason string, want uint64) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			before := refusalCount(reason, "PLAINTEXT", testProject)
			c := kafkatest.DialT(t, r.plain, nil)
			c.RoundTrip(kafkatest.ProduceRequest(9, 1, testTopic4, batches))
			if got := refusalCount(reason, "PLAINTEXT", testProject) - before; got != want {
				t.Fatalf("%d %s refusals counted, want %d", got, reason, want)
			}
			var last *Refusal
			for _, sh := range r.srv.Shippers() {
				if sh.Address == c.Conn().LocalAddr().String() {
					last = sh.LastError
				}
			}
			if last == nil || last.Reason != reason || !strings.Contains(last.Detail, testTopic4) {
				t.Fatalf("last error %+v, want a %s on %s", last, reason, testTopic4)
			}
		})
	}
	f("corrupt batches", map[int32][]byte{0: badCRC, 1: badCRC, 2: good}, RefusalCorruptBatch, 2)
	f("oversized batch", map[int32][]byte{0: oversized, 1: good}, RefusalTooLarge, 1)
	f("partition out of range", map[int32][]byte{7: good}, RefusalUnknownTopic, 1)
}
