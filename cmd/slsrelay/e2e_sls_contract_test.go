package main

// What SLS refuses (bench/slsfake/CONTRACT.md), through the real relay and
// real Kafka clients: a key without write permission is refused before
// anything is acknowledged; an all-topics Metadata needs no ListLogStores;
// logs SLS would refuse are repaired, or split off into dead letters when
// the relay does not know SLS refuses them; logs are re-timed against
// SLS's clock; a v4-only region; a key disabled after it was proven.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/VictoriaMetrics/metrics"
	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
)

// Two keys besides the demo one: noWrite has SLS's documented Kafka policy
// without log:PostLogStoreLogs, kafka has that policy whole (the
// stand-in's KafkaUpload preset, from "Use the Kafka protocol to upload
// logs", https://www.alibabacloud.com/help/en/sls/use-the-kafka-protocol-to-upload-logs).
const (
	noWriteAKID   = "kafka-nowrite-akid"
	noWriteSecret = "kafka-nowrite-secret"
	kafkaAKID     = "kafka-akid"
	kafkaSecret   = "kafka-secret"
	noWritePass   = noWriteAKID + "#" + noWriteSecret
	kafkaPass     = kafkaAKID + "#" + kafkaSecret
)

// withFake returns a relay config change that runs the stand-in on
// e2eFakeConfig changed by mod.
func withFake(t testing.TB, mod func(*slsfake.Config)) func(*relay.Config) {
	t.Helper()
	fc := e2eFakeConfig()
	mod(&fc)
	path := relaytest.StandInFile(t, fc)
	return func(c *relay.Config) { c.SLS.StandIn.Config = path }
}

// kafkaKeys adds the noWrite and kafka keys.
func kafkaKeys(fc *slsfake.Config) {
	project := "acs:log:*:*:project/" + relaytest.Project
	fc.AccessKeys = append(fc.AccessKeys,
		slsfake.AccessKeyConfig{ID: noWriteAKID, Secret: noWriteSecret, Policy: []slsfake.Statement{
			{Effect: "Allow", Action: []string{"log:GetProject"}, Resource: []string{project}},
			{Effect: "Allow", Action: []string{"log:GetLogStore", "log:ListShards"}, Resource: []string{project + "/logstore/*"}},
		}},
		slsfake.AccessKeyConfig{ID: kafkaAKID, Secret: kafkaSecret, KafkaUpload: []string{relaytest.Project}})
}

// counter reads a counter of the process-wide metrics set the relay
// exposes. Tests run in parallel in one process: compare deltas with ≥.
func counter(name string) uint64 { return metrics.GetOrCreateCounter(name).Get() }

// nothingTaken fails unless neither the WAL nor the stand-in holds
// anything of logstore.
func (r *testRelay) nothingTaken(t testing.TB, logstore string) {
	t.Helper()
	if n := r.walRecords(logstore); n != 0 {
		t.Errorf("the WAL took %d records for %s", n, logstore)
	}
	if n := r.fake.LogCount(relaytest.Project, logstore); n != 0 {
		t.Errorf("SLS holds %d logs of %s", n, logstore)
	}
}

// TestE2EContractWritePermission: a key with the documented Kafka policy
// minus log:PostLogStoreLogs gets TOPIC_AUTHORIZATION_FAILED with
// franz-go, sarama and kcat, and nothing is acknowledged, stored or
// delivered; with the whole policy, each delivers exactly once; an
// all-topics Metadata with that policy (no log:ListLogStores) answers
// without an error and without asking SLS to list.
func TestE2EContractWritePermission(t *testing.T) {
	t.Parallel()
	r := startTestRelay(t, withFake(t, kafkaKeys))
	type produce func(t *testing.T, logstore, password string, recs []sent) error
	clients := []struct {
		name string
		send produce
	}{
		{"franz-go", func(t *testing.T, logstore, password string, recs []sent) error {
			cl := newKgo(t, append(r.kgoOptsAs(lSASLSSL, relaytest.Project, password), kgo.UnknownTopicRetries(0), kgo.RecordRetries(2))...)
			return produceKgo(t, cl, logstore, recs)
		}},
		{"sarama", func(t *testing.T, logstore, password string, recs []sent) error {
			cfg := r.saramaConfig(lSASLSSL, sarama.V2_1_0_0, password)
			cfg.Metadata.Retry.Max = 0
			cfg.Producer.Retry.Max = 0
			return produceSarama(t, r.addr(lSASLSSL), cfg, logstore, recs)
		}},
		{"kcat", func(t *testing.T, logstore, password string, recs []sent) error {
			return produceKcatVia(t, r.SASLSSL.As(relaytest.Project, password), "none", logstore, nil, recs)
		}},
	}
	t.Run("without-PostLogStoreLogs", func(t *testing.T) {
		for i, c := range clients {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				logstore := e2eStore(1 + i)
				err := c.send(t, logstore, noWritePass, loadRecords(0, 5, 2))
				var refused bool
				switch c.name {
				case "franz-go":
					refused = isKerr(err, kerr.TopicAuthorizationFailed)
				case "sarama":
					refused = errors.Is(err, sarama.ErrTopicAuthorizationFailed)
				case "kcat":
					refused = err != nil && strings.Contains(strings.ToLower(err.Error()), "topic authorization failed")
				}
				if !refused {
					t.Errorf("produce with a key that may not write: %v, want TOPIC_AUTHORIZATION_FAILED", err)
				}
				r.nothingTaken(t, logstore)
			})
		}
	})
	t.Run("documented-policy", func(t *testing.T) {
		for i, c := range clients {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				logstore := e2eStore(4 + i)
				recs := loadRecords(0, 20, 2)
				from := time.Now()
				if err := c.send(t, logstore, kafkaPass, recs); err != nil {
					t.Fatalf("produce with SLS's documented Kafka policy: %v", err)
				}
				setWindow(recs, from, time.Now())
				r.waitIDs(t, logstore, recs, e2eTimeout)
				r.checkDelivered(t, logstore, recs, true)
			})
		}
	})
	// SLS's Kafka policy grants no log:ListLogStores: the all-topics
	// Metadata sarama-based shippers send must not need it.
	t.Run("all-topics-Metadata", func(t *testing.T) {
		for _, password := range []string{kafkaPass, noWritePass} {
			cl := newKgo(t, r.kgoOptsAs(lSASLSSL, relaytest.Project, password)...)
			ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
			resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl) // Topics nil: all
			cancel()
			if err != nil {
				t.Fatalf("all-topics Metadata: %v", err)
			}
			var names []string
			for _, tp := range resp.Topics {
				names = append(names, *tp.Topic)
				if tp.ErrorCode != 0 {
					t.Errorf("all-topics Metadata: topic %s: %v", *tp.Topic, kerr.ErrorForCode(tp.ErrorCode))
				}
			}
			t.Logf("%s: all-topics Metadata lists %v", strings.Split(password, "#")[0], names)
			if password == kafkaPass && !strings.Contains(strings.Join(names, ","), e2eStore(4)) {
				t.Errorf("all-topics Metadata lists %v, not %s the key wrote to", names, e2eStore(4))
			}
		}
		// sarama's own all-topics refresh (Metadata.Full).
		cfg := r.saramaConfig(lSASLSSL, sarama.V2_1_0_0, kafkaPass)
		cfg.Metadata.Full = true
		sc, err := sarama.NewClient([]string{r.addr(lSASLSSL)}, cfg)
		if err != nil {
			t.Fatalf("sarama client: %v", err)
		}
		defer sc.Close()
		if err := sc.RefreshMetadata(); err != nil {
			t.Errorf("sarama all-topics refresh: %v", err)
		}
		if n := r.fake.Stats().Requests[slsfake.OpListLogStores]; n != 0 {
			t.Errorf("the relay called ListLogStores %d times", n)
		}
	})
}

// svCut is shardwriter's cut marker (sanitize.go svCutMarker).
const svCut = "…[cut]"

// contractJSONRecords returns n JSON records of which three are invalid
// for SLS in three ways — a refused key (badKey), a value with invalid
// UTF-8, a value over 1 MiB — with the fields they must arrive with once
// repaired (fixedKey for badKey), and the indexes of the three.
func contractJSONRecords(n int, badKey, fixedKey string) (recs []sent, keyAt, utf8At, bigAt int) {
	keyAt, utf8At, bigAt = n/10+1, n/2+2, n-n/10+3
	now := time.Now().Truncate(time.Millisecond)
	recs = make([]sent, n)
	for i := range recs {
		id := e2eID(i)
		var v []byte
		var want []slsfake.KV
		switch i {
		case keyAt:
			v = fmt.Appendf(nil, `{"id":%q,%q:"x","msg":"refused key"}`, id, badKey)
			want = []slsfake.KV{{Key: "id", Value: id}, {Key: fixedKey, Value: "x"}, {Key: "msg", Value: "refused key"}}
		case utf8At:
			v = fmt.Appendf(nil, `{"id":%q,"msg":"bad %s byte"}`, id, "\xff")
			want = []slsfake.KV{{Key: "id", Value: id}, {Key: "msg", Value: "bad \uFFFD byte"}}
		case bigAt:
			big := strings.Repeat("a", 1<<20+1000)
			v = fmt.Appendf(nil, `{"id":%q,"big":%q}`, id, big)
			want = []slsfake.KV{{Key: "id", Value: id}, {Key: "big", Value: big[:1<<20-len(svCut)] + svCut}}
		default:
			v = fmt.Appendf(nil, `{"id":%q,"msg":"record %d","n":%d}`, id, i, i)
			want = expectFields(v, true, nil, "")
		}
		recs[i] = sent{ID: id, Partition: int32(i % 2), Value: v, Time: now, Exact: true, Want: want}
	}
	return recs, keyAt, utf8At, bigAt
}

// TestE2EContractJSONContent: 1,000 JSON records on a .json topic, three
// of them invalid for SLS in three ways. Where the relay knows SLS's rule,
// the three are repaired (the renamed key, U+FFFD, the cut marker) and all
// 1,000 are delivered once. Whether SLS enforces the key syntax is unclear
// (CONTRACT.md): both readings run, the stand-in's StrictKeys matching
// the relay's sls.strict_keys; and with the stand-in strict and the relay
// lenient, the group SLS refuses is split and only the refused record is
// a dead letter, which a replay does not duplicate anything with.
func TestE2EContractJSONContent(t *testing.T) {
	t.Parallel()
	f := func(name string, slsStrict, relayStrict bool, badKey, fixedKey string, fixKind string) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startTestRelay(t, withFake(t, func(fc *slsfake.Config) { fc.StrictKeys = slsStrict }), func(c *relay.Config) {
				c.SLS.Convert.StrictKeys = relayStrict
				c.Limits.MaxMessageBytes = 8 << 20 // the 1 MiB value
			})
			const logstore = "e2e-01"
			recs, keyAt, utf8At, bigAt := contractJSONRecords(1000, badKey, fixedKey)
			fixes := func() [3]uint64 {
				return [3]uint64{counter(`slsrelay_log_fixes_total{kind="` + fixKind + `"}`),
					counter(`slsrelay_log_fixes_total{kind="value_encoding"}`), counter(`slsrelay_log_fixes_total{kind="long_value"}`)}
			}
			before := fixes()
			cl := newKgo(t, append(r.kgoOpts(lPlain, relaytest.Password), kgo.ProducerBatchMaxBytes(4<<20))...)
			// The first batch of a key and logstore is delivered before
			// its answer (the write proof): a clean one, so that the
			// pair is proven whatever SLS refuses later.
			if err := produceKgo(t, cl, logstore+".json", recs[:1]); err != nil {
				t.Fatalf("produce the proving record: %v", err)
			}
			if err := produceKgo(t, cl, logstore+".json", recs[1:]); err != nil {
				t.Fatalf("produce: %v", err)
			}
			refused := slsStrict && !relayStrict
			delivered := recs
			if refused {
				delivered = append(append([]sent{}, recs[:keyAt]...), recs[keyAt+1:]...)
			}
			r.waitIDs(t, logstore, delivered, e2eTimeout)
			after := fixes()
			for i, at := range []int{keyAt, utf8At, bigAt} {
				if i == 0 && refused {
					continue
				}
				if after[i] <= before[i] {
					t.Errorf("record %d was repaired, yet slsrelay_log_fixes_total did not move (%v → %v)", at, before, after)
				}
			}
			if !refused {
				time.Sleep(100 * time.Millisecond)
				r.checkDelivered(t, logstore, delivered, true)
				if n := r.WAL().DeadLetterCount(); n != 0 {
					t.Errorf("%d dead letters: every record was repairable", n)
				}
				return
			}
			// The refused record alone is a dead letter, with SLS's answer.
			waitFor(t, 10*time.Second, "a dead letter", func() bool { return r.WAL().DeadLetterCount() > 0 })
			checkLetters := func() {
				t.Helper()
				letters := r.deadLetters(t)
				if len(letters) != 1 || letters[0].Entry.Records != 1 {
					t.Fatalf("dead letters %+v, want one holding one record", letters)
				}
				d := letters[0]
				if !strings.Contains(d.Reason, "InvalidKey") {
					t.Errorf("dead letter reason %q does not name InvalidKey", d.Reason)
				}
				if !bytes.Contains(d.Entry.Data, []byte(recs[keyAt].ID)) || !bytes.Contains(d.Entry.Data, []byte(badKey)) {
					t.Errorf("the dead letter does not hold record %s with key %s", recs[keyAt].ID, badKey)
				}
			}
			checkLetters()
			r.checkDelivered(t, logstore, delivered, true)
			// Replaying it sends only that record again: SLS refuses it
			// again, nothing is duplicated.
			if _, err := r.WAL().Replay(r.deadLetters(t)[0].ID); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the replayed record to be a dead letter again", func() bool {
				return r.Writers().Stats().DeadLetters.Load() == 2 && r.WAL().DeadLetterCount() == 1
			})
			checkLetters()
			r.checkDelivered(t, logstore, delivered, true)

			// The same through `slsrelay dlq replay`, with the relay
			// stopped: the next relay's SLS (a new, empty stand-in) gets
			// the refused record alone, and refuses it again.
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "slsrelay.yaml")
			relaytest.WriteConfig(t, path, r.cfg)
			if code, out, stderr := dlq("replay", "-config", path, "-all"); code != 0 {
				t.Fatalf("dlq replay: exit %d\n%s%s", code, out, stderr)
			}
			r2 := startTestRelayConfig(t, r.cfg)
			waitFor(t, 10*time.Second, "the replayed record to be a dead letter again", func() bool {
				return r2.Writers().Stats().DeadLetters.Load() == 1 && r2.WAL().DeadLetterCount() == 1
			})
			if n := r2.fake.LogCount(relaytest.Project, logstore); n != 0 {
				t.Errorf("the replay delivered %d logs: more than the refused record was replayed", n)
			}
		})
	}
	f("lenient", false, false, "__time__", "___time__", "reserved_key")
	f("strict", true, true, "@timestamp", "__timestamp", "key_syntax")
	f("strict-SLS-lenient-relay", true, false, "@timestamp", "", "key_syntax")
}

// TestE2EContractClockSkew: the relay's clock off SLS's. The relay cannot
// move its own clock, so the stand-in's is moved; records carry the
// relay's now. Logs SLS would refuse for their time are re-timed against
// SLS's clock (its Date header) before every send, the proof's included;
// nothing is refused, everything is delivered once.
func TestE2EContractClockSkew(t *testing.T) {
	t.Parallel()
	const retimed = `slsrelay_log_fixes_total{kind="time_outside_window"}`
	// f: SLS's clock is skew off the relay's; SLS takes requests dated
	// within window of its clock (SLS: 15 min; wider isolates the rule on
	// log times); producers stamp records with the relay's clock plus
	// ahead. retime: the logs must arrive re-timed to SLS's now.
	f := func(name string, skew, window, ahead time.Duration, retime bool) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startTestRelay(t, withFake(t, func(fc *slsfake.Config) { fc.TimeWindow = window }))
			r.fake.SetClockSkew(skew)
			const logstore = "e2e-01"
			recs := loadRecords(0, 50, 2)
			stamp := time.Now().Add(ahead).Truncate(time.Millisecond)
			for i := range recs {
				recs[i].Time, recs[i].Exact = stamp, !retime
			}
			before := counter(retimed)
			cl := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
			from := time.Now()
			if err := produceKgo(t, cl, logstore, recs[:1]); err != nil {
				t.Fatalf("produce the proving record: %v", err)
			}
			if err := produceKgo(t, cl, logstore, recs[1:]); err != nil {
				t.Fatalf("produce: %v", err)
			}
			r.waitIDs(t, logstore, recs, e2eTimeout)
			setWindow(recs, from.Add(skew), time.Now().Add(skew))
			r.checkDelivered(t, logstore, recs, true)
			if moved := counter(retimed) - before; retime && moved < uint64(len(recs)) {
				t.Errorf("slsrelay_log_fixes_total{kind=time_outside_window} moved by %d, want ≥ %d", moved, len(recs))
			}
			if n := r.fake.Stats().Errors; n != 0 {
				t.Errorf("SLS refused %d requests", n)
			}
		})
	}
	f("SLS-20m-behind", -20*time.Minute, 30*time.Minute, 0, true)
	f("SLS-20m-ahead", 20*time.Minute, 30*time.Minute, 0, false)
	f("SLS-10m-behind/records-10m-ahead", -10*time.Minute, 0, 10*time.Minute, true)

	// With SLS's own 15-minute window on the request's date, a relay
	// 20 minutes off is refused (400 RequestTimeExpired) whatever the logs
	// say: acknowledged records are retried, not dead-lettered, and
	// delivered once the clocks agree.
	t.Run("request-window", func(t *testing.T) {
		t.Parallel()
		r := startTestRelay(t)
		const logstore = "e2e-01"
		cl := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
		first := loadRecords(0, 1, 1)
		from := time.Now()
		if err := produceKgo(t, cl, logstore, first); err != nil {
			t.Fatalf("produce the proving record: %v", err)
		}
		setWindow(first, from, time.Now())
		r.fake.SetClockSkew(-20 * time.Minute)
		const expired = `slsrelay_sls_errors_total{code="RequestTimeExpired",verdict="retry"}`
		before := counter(expired)
		second := loadRecords(1, 20, 2)
		from = time.Now()
		if err := produceKgo(t, cl, logstore, second); err != nil {
			t.Fatalf("produce after the proof: %v", err)
		}
		waitFor(t, 10*time.Second, "RequestTimeExpired retried", func() bool { return counter(expired) > before })
		r.fake.SetClockSkew(0)
		r.waitIDs(t, logstore, append(first, second...), e2eTimeout)
		// Re-timed at the refused sends to SLS's time as its answers gave it.
		setWindow(second, from.Add(-20*time.Minute), time.Now())
		r.checkDelivered(t, logstore, append(first, second...), true)
		if n := r.WAL().DeadLetterCount(); n != 0 {
			t.Errorf("%d dead letters: a clock refusal passes", n)
		}
	})
}

// TestE2EContractSignatureV4: a region that takes only v4 signatures. The
// relay with sls.region signs v4 and delivers; with sls.auth_version: v1
// SLS answers 401 Unauthorized, which the error table maps to
// TOPIC_AUTHORIZATION_FAILED (rule passing_auth): nothing is acknowledged.
func TestE2EContractSignatureV4(t *testing.T) {
	t.Parallel()
	v4Only := func(fc *slsfake.Config) { fc.RequireV4 = true }
	t.Run("region", func(t *testing.T) {
		t.Parallel()
		r := startTestRelay(t, withFake(t, v4Only), func(c *relay.Config) { c.SLS.Region = "cn-local" })
		r.sls.AuthVersion, r.sls.Region = sls.AuthV4, "cn-local" // reads back
		recs := loadRecords(0, 20, 2)
		cl := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
		from := time.Now()
		if err := produceKgo(t, cl, "e2e-01", recs); err != nil {
			t.Fatalf("produce: %v", err)
		}
		setWindow(recs, from, time.Now())
		r.waitIDs(t, "e2e-01", recs, e2eTimeout)
		r.checkDelivered(t, "e2e-01", recs, true)
	})
	t.Run("v1", func(t *testing.T) {
		t.Parallel()
		r := startTestRelay(t, withFake(t, v4Only), func(c *relay.Config) { c.SLS.Region, c.SLS.AuthVersion = "cn-local", "v1" })
		cl := newKgo(t, append(r.kgoOpts(lPlain, relaytest.Password), kgo.UnknownTopicRetries(0), kgo.RecordRetries(2))...)
		if err := produceKgo(t, cl, "e2e-01", loadRecords(0, 5, 2)); !isKerr(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("produce signed v1 to a v4-only region: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		r.nothingTaken(t, "e2e-01")
	})
}

// TestE2EContractKeyDisabled: a key disabled at SLS after it was proven.
// Batches acknowledged before the relay learns of it are retried, not
// dead-lettered, and delivered once the key is enabled again; new produce
// requests get TOPIC_AUTHORIZATION_FAILED while it is disabled.
func TestE2EContractKeyDisabled(t *testing.T) {
	t.Parallel()
	r := startTestRelay(t, withFake(t, kafkaKeys), func(c *relay.Config) { c.SLS.MaxRetryInterval = 300 * time.Millisecond })
	const logstore = "e2e-01"
	cl := newKgo(t, append(r.kgoOptsAs(lSASLSSL, relaytest.Project, kafkaPass), kgo.UnknownTopicRetries(0), kgo.RecordRetries(2))...)
	first, second := loadRecords(0, 5, 2), loadRecords(5, 20, 2)
	from := time.Now()
	if err := produceKgo(t, cl, logstore, first); err != nil {
		t.Fatalf("produce: %v", err)
	}
	r.waitIDs(t, logstore, first, e2eTimeout)
	if err := r.fake.SetKeyState(kafkaAKID, slsfake.KeyDisabled); err != nil {
		t.Fatal(err)
	}
	// Proven, and not yet refused: acknowledged from the WAL.
	if err := produceKgo(t, cl, logstore, second); err != nil {
		t.Fatalf("produce before the relay learns of the disabled key: %v", err)
	}
	retries := r.Writers().Stats().Retries.Load()
	waitFor(t, 10*time.Second, "the writer to retry the disabled key", func() bool { return r.Writers().Stats().Retries.Load() > retries+2 })
	if err := produceKgo(t, cl, logstore, loadRecords(100, 5, 2)); !isKerr(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("produce while the key is disabled: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if n := r.walRecords(logstore); n != int64(len(first)+len(second)) {
		t.Errorf("the WAL took %d records, want the %d acknowledged", n, len(first)+len(second))
	}
	if err := r.fake.SetKeyState(kafkaAKID, slsfake.KeyEnabled); err != nil {
		t.Fatal(err)
	}
	all := append(first, second...)
	r.waitIDs(t, logstore, all, e2eTimeout)
	setWindow(all, from, time.Now())
	r.checkDelivered(t, logstore, all, true)
	if n := r.WAL().DeadLetterCount(); n != 0 {
		t.Errorf("%d dead letters: a disabled key passes", n)
	}
	// The writers delivered with the key: new requests are taken again.
	t0 := time.Now()
	if err := produceKgo(t, cl, logstore, loadRecords(200, 5, 2)); err != nil {
		t.Errorf("produce once the key is enabled again and delivered with: %v", err)
	}
	t.Logf("produce after re-enable took %v", time.Since(t0))
}

// TestE2EContractProofDuringOutage: during an SLS outage, a key and
// Logstore never proven cannot be acknowledged (its first batch must reach
// SLS first): the shipper gets a retriable error and nothing is stored;
// once SLS is back, the same batch goes through, delivered once.
func TestE2EContractProofDuringOutage(t *testing.T) {
	t.Parallel()
	r := startTestRelay(t)
	const logstore = "e2e-01"
	// Longer than the SDK's own retries (shardwriter's clientPool: 5 s).
	const outage = 8 * time.Second
	if err := r.fake.Outage(outage, slsfake.OutageRefuse); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(outage)
	recs := loadRecords(0, 10, 2)
	cl := newKgo(t, append(r.kgoOpts(lPlain, relaytest.Password), kgo.UnknownTopicRetries(0), kgo.RecordRetries(0))...)
	t0 := time.Now()
	err := produceKgo(t, cl, logstore, recs)
	if time.Now().After(end) {
		t.Fatalf("the produce during the outage took %v, past its end", time.Since(t0))
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) || !ke.Retriable {
		t.Errorf("produce of a never proven pair during an outage: %v, want a retriable Kafka error", err)
	}
	t.Logf("during the outage, after %v: %v", time.Since(t0).Round(time.Millisecond), err)
	r.nothingTaken(t, logstore)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	from := time.Now()
	if err := produceKgo(t, newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...), logstore, recs); err != nil {
		t.Fatalf("produce after the outage: %v", err)
	}
	setWindow(recs, from, time.Now())
	r.waitIDs(t, logstore, recs, e2eTimeout)
	r.checkDelivered(t, logstore, recs, true)
}
