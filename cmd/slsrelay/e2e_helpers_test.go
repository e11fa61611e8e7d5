package main

// Shared pieces of the end-to-end tests (e2e_*_test.go): the relay users
// run (package relay, started by relaytest: engine → WAL → shardwriter →
// the in-process SLS stand-in) on loopback ports, the Kafka clients that
// write to it (kafkatest), the SDK client that reads back what reached the
// stand-in, and the checks.
//
// Every case writes its own logstore (the stand-in serves test-logstore-1,
// test-logstore-2 and e2e-01 … e2e-40, two shards each unless said), so a
// logstore's contents are exactly one case's records, and every record
// carries its id ("id-000042") in its value so that it can be found again.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/IBM/sarama"
	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
)

// e2eTimeout bounds every wait of these tests for one thing to happen.
const e2eTimeout = 30 * time.Second

// e2eLogstores is how many extra logstores (e2e-01 …) the stand-in serves.
const e2eLogstores = 40

func e2eStore(i int) string { return fmt.Sprintf("e2e-%02d", i) }

// e2eFakeConfig is the stand-in's default layout plus the e2e logstores.
func e2eFakeConfig() slsfake.Config {
	fc := slsfake.DefaultConfig()
	for i := 1; i <= e2eLogstores; i++ {
		fc.Projects[0].Logstores = append(fc.Projects[0].Logstores, slsfake.LogstoreConfig{Name: e2eStore(i), ShardCount: 2})
	}
	return fc
}

// testRelay is a relay started by relaytest, and the SDK client that
// reads back from its stand-in.
type testRelay struct {
	*relaytest.Relay
	cfg  *relay.Config
	fake *slsfake.Server
	sls  *sls.Client // reads back, signed with the demo key
}

// e2eConfig is relaytest's (configs/local.yaml on free loopback ports and
// a fresh data_dir) with a stand-in serving e2eFakeConfig, a short retry
// interval and linger.
func e2eConfig(t testing.TB) *relay.Config {
	t.Helper()
	cfg := relaytest.Config(t)
	cfg.SLS.StandIn = &relay.StandInConfig{Listen: "127.0.0.1:0", Config: relaytest.StandInFile(t, e2eFakeConfig())}
	cfg.SLS.RetryInterval = 100 * time.Millisecond
	cfg.SLS.Linger = 20 * time.Millisecond
	return cfg
}

// startTestRelay starts a relay on e2eConfig changed by mods; it is closed
// when the test ends.
func startTestRelay(t testing.TB, mods ...func(*relay.Config)) *testRelay {
	t.Helper()
	cfg := e2eConfig(t)
	for _, m := range mods {
		m(cfg)
	}
	return startTestRelayConfig(t, cfg)
}

// startTestRelayConfig starts a relay on cfg as it is (a restart on the
// same data_dir passes the config of the relay it replaces).
func startTestRelayConfig(t testing.TB, cfg *relay.Config) *testRelay {
	t.Helper()
	rt := relaytest.Start(t, cfg)
	r := &testRelay{Relay: rt, cfg: cfg, fake: rt.Addrs.StandIn}
	if r.fake == nil {
		t.Fatal("the relay runs no stand-in")
	}
	// Every field the SDK would fill in lazily is set: parallel subtests
	// share this client, and its lazy initialisation writes unlocked.
	r.sls = &sls.Client{Endpoint: r.fake.Endpoint(), AccessKeyID: relaytest.AKID, AccessKeySecret: relaytest.Secret, HTTPClient: r.fake.HTTPClient(),
		RequestTimeOut: 30 * time.Second, RetryTimeOut: 30 * time.Second}
	return r
}

// waitFor polls cond every 20 ms until it holds, or fails the test after
// timeout saying what it waited for.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLogs waits until the stand-in stores at least n logs of the
// logstore.
func (r *testRelay) waitLogs(t testing.TB, project, logstore string, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d logs in %s/%s (have %d)", n, project, logstore, r.fake.LogCount(project, logstore)),
		func() bool { return r.fake.LogCount(project, logstore) >= n })
}

// pulled is one log read back through the SDK.
type pulled struct {
	Shard     int
	Time      uint32
	TimeNs    uint32
	HasTimeNs bool
	Contents  []slsfake.KV
}

// pullAll reads every log of a logstore back through the SDK: ListShards,
// then GetCursor(begin) and PullLogs to the end on every shard, readonly
// ones included.
func (r *testRelay) pullAll(t testing.TB, logstore string) []pulled {
	t.Helper()
	shards, err := r.sls.ListShards(relaytest.Project, logstore)
	if err != nil {
		t.Fatalf("ListShards %s: %v", logstore, err)
	}
	var out []pulled
	for _, sh := range shards {
		cursor, err := r.sls.GetCursor(relaytest.Project, logstore, sh.ShardID, "begin")
		if err != nil {
			t.Fatalf("GetCursor %s/%d: %v", logstore, sh.ShardID, err)
		}
		for {
			gl, next, err := r.sls.PullLogs(relaytest.Project, logstore, sh.ShardID, cursor, "", 1000)
			if err != nil {
				t.Fatalf("PullLogs %s/%d: %v", logstore, sh.ShardID, err)
			}
			if gl == nil || len(gl.LogGroups) == 0 {
				break
			}
			for _, g := range gl.LogGroups {
				for _, l := range g.Logs {
					p := pulled{Shard: sh.ShardID, Time: l.GetTime(), TimeNs: l.GetTimeNs(), HasTimeNs: l.TimeNs != nil}
					for _, c := range l.Contents {
						p.Contents = append(p.Contents, slsfake.KV{Key: c.GetKey(), Value: c.GetValue()})
					}
					out = append(out, p)
				}
			}
			cursor = next
		}
	}
	return out
}

// idPattern finds a record's id in its log.
var idPattern = regexp.MustCompile(`id-\d{6}`)

func e2eID(i int) string { return fmt.Sprintf("id-%06d", i) }

// idOf returns the id a log carries (in any field), or "".
func (p pulled) idOf() string {
	for _, kv := range p.Contents {
		if id := idPattern.FindString(kv.Value); id != "" {
			return id
		}
	}
	return ""
}

// byID groups logs by the id they carry; logs without one are under "".
func byID(logs []pulled) map[string][]pulled {
	m := map[string][]pulled{}
	for _, l := range logs {
		id := l.idOf()
		m[id] = append(m[id], l)
	}
	return m
}

// sent is one record a test produces, and what its log must look like.
type sent struct {
	ID        string
	Partition int32
	Key       []byte // nil: none
	Value     []byte
	Headers   []kgo.RecordHeader
	// Time is the timestamp the producer sets; zero: the client's own
	// (or none, in magic 0).
	Time time.Time

	// Want is the log's fields, in order.
	Want []slsfake.KV
	// WantTime: exact (the record's timestamp, to the millisecond), or
	// within [From, To] (seconds) when the relay's receive time or the
	// client's clock stamps it.
	Exact    bool
	From, To time.Time
}

// expectFields is the oracle for a log's fields: the value as content, or
// in JSON mode one field per top-level key of a JSON object (strings
// unquoted, null as "", numbers and booleans as written, objects and arrays
// as compact JSON, empty keys skipped); anything that is not such an
// object stays content. Then the key field, if configured and the record has
// a key. It is written with encoding/json, independently of the relay's
// scanner.
func expectFields(value []byte, jsonMode bool, key []byte, keyField string) []slsfake.KV {
	var out []slsfake.KV
	if jsonMode {
		out = jsonFields(value)
	}
	if out == nil {
		out = []slsfake.KV{{Key: "content", Value: string(value)}}
	}
	if keyField != "" && key != nil {
		out = append(out, slsfake.KV{Key: keyField, Value: string(key)})
	}
	return out
}

func jsonFields(value []byte) []slsfake.KV {
	dec := json.NewDecoder(bytes.NewReader(value))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var out []slsfake.KV
	seen := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		k := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil
		}
		var v string
		switch raw[0] {
		case '"':
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil
			}
		case 'n':
			v = ""
		case '{', '[':
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return nil
			}
			v = b.String()
		default:
			v = string(raw)
		}
		if k == "" {
			continue
		}
		if i, ok := seen[k]; ok {
			out[i].Value = v
			continue
		}
		seen[k] = len(out)
		out = append(out, slsfake.KV{Key: k, Value: v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil
	}
	return out
}

// checkDelivered compares what a logstore holds with the records sent:
// every record's log is there with its fields and time, nothing else is.
// With exactlyOnce, a record stored twice is an error; otherwise
// duplicates are counted, logged and returned.
func (r *testRelay) checkDelivered(t testing.TB, logstore string, recs []sent, exactlyOnce bool) (duplicates int) {
	t.Helper()
	got := byID(r.pullAll(t, logstore))
	if strays := got[""]; len(strays) > 0 {
		t.Errorf("%s: %d logs carry no id; the first: %+v", logstore, len(strays), strays[0])
	}
	want := map[string]bool{}
	missing := 0
	for _, s := range recs {
		want[s.ID] = true
		logs := got[s.ID]
		switch {
		case len(logs) == 0:
			missing++
			if missing <= 5 {
				t.Errorf("%s: record %s was never delivered", logstore, s.ID)
			}
			continue
		case len(logs) > 1:
			duplicates += len(logs) - 1
			if exactlyOnce {
				t.Errorf("%s: record %s was delivered %d times", logstore, s.ID, len(logs))
			}
		}
		for _, l := range logs {
			if !slices.Equal(l.Contents, s.Want) {
				t.Errorf("%s: record %s (value %q, key %q, headers %v):\n got fields %q\nwant fields %q", logstore, s.ID, s.Value, s.Key, s.Headers, l.Contents, s.Want)
			}
			if !l.HasTimeNs {
				t.Errorf("%s: record %s: the log has no TimeNs", logstore, s.ID)
			}
			switch {
			case s.Exact:
				ms := s.Time.Truncate(time.Millisecond)
				if int64(l.Time) != ms.Unix() || int64(l.TimeNs) != int64(ms.Nanosecond()) {
					t.Errorf("%s: record %s: __time__ %d.%09d, want the record timestamp %d.%09d", logstore, s.ID, l.Time, l.TimeNs, ms.Unix(), ms.Nanosecond())
				}
			case int64(l.Time) < s.From.Unix() || int64(l.Time) > s.To.Unix():
				t.Errorf("%s: record %s: __time__ %d (%v), want the receive time, within [%d, %d]", logstore, s.ID, l.Time,
					time.Unix(int64(l.Time), 0).UTC(), s.From.Unix(), s.To.Unix())
			}
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d records were never delivered", logstore, missing, len(recs))
	}
	for id, logs := range got {
		if id != "" && !want[id] {
			t.Errorf("%s: %d logs of record %s, which was never sent", logstore, len(logs), id)
		}
	}
	if duplicates > 0 {
		t.Logf("%s: %d duplicate logs (at-least-once delivery)", logstore, duplicates)
	}
	return duplicates
}

// setWindow marks records without an exact time as stamped within
// [from, to] (widened by a second either way for the clients' clocks and
// rounding).
func setWindow(recs []sent, from, to time.Time) {
	for i := range recs {
		if !recs[i].Exact {
			recs[i].From, recs[i].To = from.Add(-time.Second), to.Add(time.Second)
		}
	}
}

// listener is how a client reaches the relay.
type listener int

const (
	lPlain   listener = iota // PLAINTEXT: the listener's project and key
	lSASLSSL                 // SASL_SSL with SASL PLAIN
)

func (l listener) String() string { return [...]string{"PLAINTEXT", "SASL_SSL"}[l] }

// client is how kafkatest's clients reach the relay through l.
func (r *testRelay) client(l listener) kafkatest.Listener {
	if l == lSASLSSL {
		return r.SASLSSL
	}
	return r.Plain
}

// clientAs is client(l) authenticating as user with password, where l
// authenticates (PLAINTEXT clients write as the listener's project).
func (r *testRelay) clientAs(l listener, user, password string) kafkatest.Listener {
	kl := r.client(l)
	if kl.User != "" {
		kl = kl.As(user, password)
	}
	return kl
}

func (r *testRelay) addr(l listener) string { return r.client(l).Addr }

// kgoOpts reaches the relay through l as the demo project with password,
// with bounded timeouts and a manual partitioner.
func (r *testRelay) kgoOpts(l listener, password string) []kgo.Opt {
	return r.kgoOptsAs(l, relaytest.Project, password)
}

// kgoOptsAs is kgoOpts with another SASL username (project).
func (r *testRelay) kgoOptsAs(l listener, user, password string) []kgo.Opt {
	return append(r.clientAs(l, user, password).KgoOpts(), kgo.ProducerLinger(5*time.Millisecond))
}

func newKgo(t testing.TB, opts ...kgo.Opt) *kgo.Client { return kafkatest.NewKgo(t, opts...) }

// produceKgo sends recs to topic and waits for every ack.
func produceKgo(t testing.TB, cl *kgo.Client, topic string, recs []sent) error {
	t.Helper()
	krs := make([]*kgo.Record, len(recs))
	for i, s := range recs {
		krs[i] = &kgo.Record{Topic: topic, Partition: s.Partition, Key: s.Key, Value: s.Value, Headers: s.Headers, Timestamp: s.Time}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	return cl.ProduceSync(ctx, krs...).FirstErr()
}

// saramaConfig reaches the relay through l at version v; SASL_SSL uses
// SaslHandshake v0 without ApiVersions below 1.0, as the Beats do.
func (r *testRelay) saramaConfig(l listener, v sarama.KafkaVersion, password string) *sarama.Config {
	cfg := r.clientAs(l, relaytest.Project, password).SaramaConfig(v)
	cfg.ClientID = "sarama-e2e"
	cfg.Net.ReadTimeout = 15 * time.Second
	cfg.Net.WriteTimeout = 15 * time.Second
	cfg.Metadata.Retry.Max = 3
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Retry.Max = 3
	cfg.Producer.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Timeout = 10 * time.Second
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	return cfg
}

// produceSarama sends recs with a SyncProducer; headers only at 0.11+.
func produceSarama(t testing.TB, addr string, cfg *sarama.Config, topic string, recs []sent) error {
	t.Helper()
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, s := range recs {
		m := &sarama.ProducerMessage{Topic: topic, Partition: s.Partition, Timestamp: s.Time}
		if s.Value != nil {
			m.Value = sarama.ByteEncoder(s.Value)
		}
		if s.Key != nil {
			m.Key = sarama.ByteEncoder(s.Key)
		}
		for _, h := range s.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		}
		msgs[i] = m
	}
	return kafkatest.SaramaSend(t, addr, cfg, msgs, e2eTimeout)
}

// produceKcat sends recs (values only, one per line; no keys, timestamps
// or partitions) with kcat, librdkafka's CLI, adding headers (name=value)
// to every record.
func (r *testRelay) produceKcat(t testing.TB, l listener, codec, topic string, headers []string, recs []sent) error {
	t.Helper()
	return produceKcatVia(t, r.client(l), codec, topic, headers, recs)
}

// produceKcatVia is produceKcat through kl (another user or key).
func produceKcatVia(t testing.TB, kl kafkatest.Listener, codec, topic string, headers []string, recs []sent) error {
	t.Helper()
	args := append([]string{"-P", "-t", topic, "-z", codec,
		"-X", "message.timeout.ms=20000", "-X", "socket.timeout.ms=10000", "-X", "linger.ms=5"}, kl.KcatArgs()...)
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	return runKcat(t, args, recs)
}

// runKcat runs kcat with args, the values of recs on its stdin one a
// line; the error carries kcat's output when it fails or reports a
// failure, never the args (they hold the SASL password).
func runKcat(t testing.TB, args []string, recs []sent) error {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (make deps installs it)")
	}
	var in bytes.Buffer
	for _, s := range recs {
		if bytes.ContainsRune(s.Value, '\n') {
			t.Fatalf("kcat takes one record per line: %q", s.Value)
		}
		in.Write(s.Value)
		in.WriteByte('\n')
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kcat: %w\n%s", err, out)
	}
	if bytes.Contains(out, []byte("failed")) || bytes.Contains(out, []byte("ERROR")) {
		return fmt.Errorf("kcat reported a failure:\n%s", out)
	}
	return nil
}

// metadataPartitions asks the relay's Metadata for a topic through a raw
// Metadata request and returns its error code and partition count.
func metadataPartitions(t testing.TB, cl *kgo.Client, topic string) (int16, int) {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("Metadata %s: %v", topic, err)
	}
	if len(resp.Topics) != 1 {
		t.Fatalf("Metadata %s: %d topics in the answer", topic, len(resp.Topics))
	}
	return resp.Topics[0].ErrorCode, len(resp.Topics[0].Partitions)
}

// walRecords returns how many records the WAL ever took for streams of a
// logstore (next offsets, so delivered ones count too).
func (r *testRelay) walRecords(logstore string) int64 {
	var n int64
	for _, st := range r.WAL().Stats().Streams {
		if st.Key.Project == relaytest.Project && st.Key.Logstore == logstore {
			n += st.NextOffset
		}
	}
	return n
}

// deadLetters lists the WAL's dead letters.
func (r *testRelay) deadLetters(t testing.TB) []*wal.DeadLetter {
	t.Helper()
	var out []*wal.DeadLetter
	for d, err := range r.WAL().DeadLetters() {
		if err != nil {
			t.Fatalf("DeadLetters: %v", err)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// isKerr reports whether err is (or wraps) the Kafka error want.
func isKerr(err error, want *kerr.Error) bool { return errors.Is(err, want) }
