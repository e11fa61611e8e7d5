package engine

// librdkafka (Collectd, rsyslog, and many more) through kcat against the
// relay: every codec, acks 0, 1 and -1, idempotent or not, over PLAINTEXT and
// SASL_SSL; librdkafka's legacy modes without ApiVersions (message format
// v0 with the pre-0.10 lz4 header checksum, and v1 after SaslHandshake v0);
// then the errors it reports.

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/wal/batch"
)

// clKcat returns kcat's path, failing the test when it is missing: CI
// installs it, and a silent skip would hide the librdkafka coverage.
func clKcat(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat (librdkafka's CLI) is not installed: run `make deps` (apt-get install kcat): %v", err)
	}
	return path
}

// clKcatArgs returns the arguments that reach r through l as
// project/password.
func clKcatArgs(r *clRelay, l clListener, password string) []string {
	return append(r.listener(l, password).KcatArgs(), "-X", "message.timeout.ms=15000", "-X", "socket.timeout.ms=10000")
}

// clKcatProduce runs kcat -P with args, feeding it sent as "key:value"
// lines, and returns its combined output and error.
func clKcatProduce(t testing.TB, args []string, sent []clSent) (string, error) {
	t.Helper()
	var in bytes.Buffer
	for _, s := range sent {
		fmt.Fprintf(&in, "%s:%s\n", s.Key, s.Value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, clKcat(t), append([]string{"-P", "-K", ":"}, args...)...)
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("kcat %s did not finish in 30s; output:\n%s", strings.Join(args, " "), out)
	}
	return string(out), err
}

// TestClientsKcat produces with librdkafka through kcat and checks what the
// appender received.
func TestClientsKcat(t *testing.T) {
	t.Parallel()
	const n = 20
	clKcat(t)
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	type legacy struct {
		fallback string // broker.version.fallback, with api.version.request=false
		magic    int8
	}
	f := func(t *testing.T, l clListener, codec int8, extra []string, partition int32, old *legacy) {
		t.Parallel()
		tag := t.Name()
		sent := clMakeRecords(tag, n, 1, time.Now())
		args := append(clKcatArgs(r, l, clPassword), "-t", testTopic4, "-p", fmt.Sprint(partition), "-z", clCodecNames[codec])
		args = append(args, extra...)
		exp := clExpect{magic: 2, codec: codec, headers: true, timestamps: 'w', anyCodec: true}
		if old != nil {
			args = append(args, "-X", "api.version.request=false", "-X", "broker.version.fallback="+old.fallback)
			exp.magic, exp.headers = old.magic, false
			if old.magic == 0 {
				exp.timestamps = 'n'
			}
		} else {
			args = append(args, "-H", "case="+tag, "-H", "client=kcat")
		}
		for i := range sent {
			sent[i].Partition = partition
			if exp.headers {
				sent[i].Headers = []batch.Header{{Key: "case", Value: []byte(tag)}, {Key: "client", Value: []byte("kcat")}}
			}
		}
		for _, a := range extra {
			if a == "enable.idempotence=true" {
				exp.idempotent = true
			}
		}
		exp.from = time.Now().Add(-time.Second)
		out, err := clKcatProduce(t, args, sent)
		exp.to = time.Now().Add(time.Second)
		if err != nil || strings.Contains(out, "ERROR") || strings.Contains(out, "failed") {
			t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if codec == clCodecLz4 && old == nil {
			entries := r.caseEntries(t, testTopic4, partition, tag)
			if len(entries) > 0 && !slices.ContainsFunc(entries, func(e clEntry) bool { return e.Codec == clCodecLz4 }) {
				t.Errorf("librdkafka sent its lz4 batches uncompressed: it enables LZ4 only for a broker whose ApiVersions list FindCoordinator (key 10) v0 " +
					"(rdkafka_feature.c, the LZ4 feature stands for Kafka 0.8.2), and the relay's do not, so Collectd, rsyslog and other librdkafka shippers set to lz4 send uncompressed")
			}
		}
		r.checkStored(t, testTopic4, 4, tag, sent, exp)
	}
	variants := []struct {
		name  string
		extra []string
	}{
		{"acks=-1", []string{"-X", "acks=-1"}},
		{"acks=1", []string{"-X", "acks=1"}},
		{"idempotent", []string{"-X", "enable.idempotence=true"}},
		{"acks=0", []string{"-X", "acks=0"}},
	}
	i := 0
	for _, l := range []clListener{clPlaintext, clSASLSSL} {
		for _, codec := range clAllCodecs {
			v := variants[i%len(variants)]
			p := int32(i % 4)
			i++
			t.Run(fmt.Sprintf("%s/%s/%s", l.name, clCodecNames[codec], v.name), func(t *testing.T) { f(t, l, codec, v.extra, p, nil) })
		}
	}
	// Without ApiVersions: librdkafka's 0.8.2 (Produce v0) and 0.9.0
	// (Produce v1) feature sets, both message format v0, lz4 with the
	// broken pre-0.10 frame checksum. PLAINTEXT only: with SASL,
	// librdkafka talking to a pre-0.10 broker sends the pre-handshake raw
	// framing Kafka never accepted for PLAIN. (Message format v1 cannot be
	// pinned: any fallback from 0.10 on makes librdkafka ask ApiVersions
	// and use what the relay offers.)
	for _, old := range []legacy{{"0.8.2", 0}, {"0.9.0", 0}} {
		for _, l := range []clListener{clPlaintext} {
			for _, codec := range []int8{clCodecNone, clCodecGzip, clCodecSnappy, clCodecLz4} {
				p := int32(i % 4)
				i++
				t.Run(fmt.Sprintf("fallback-%s/%s/%s", old.fallback, l.name, clCodecNames[codec]), func(t *testing.T) {
					f(t, l, codec, []string{"-X", "acks=1"}, p, &old)
				})
			}
		}
	}
}

// TestClientsKcatErrors checks what librdkafka reports for the errors a
// shipper must be able to act on; kcat exits non-zero on each.
func TestClientsKcatErrors(t *testing.T) {
	t.Parallel()
	clKcat(t)
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	f := func(t *testing.T, l clListener, password, topic, mention string) {
		t.Parallel()
		sent := clMakeRecords(t.Name(), 2, 1, time.Now())
		args := append(clKcatArgs(r, l, password), "-t", topic, "-X", "message.timeout.ms=5000",
			// Fail records of an unknown topic at once, rather than wait
			// for it to be created.
			"-X", "topic.metadata.propagation.max.ms=10")
		out, err := clKcatProduce(t, args, sent)
		if err == nil {
			t.Fatalf("kcat succeeded, want a failure mentioning %q:\n%s", mention, out)
		}
		if !strings.Contains(out, mention) {
			t.Fatalf("kcat's output does not mention %q:\n%s", mention, out)
		}
		logstore, _ := splitTopic(topic)
		if got := r.caseCount(t, logstore, 4, t.Name()); got != 0 {
			t.Fatalf("relay holds %d records of this case, want none", got)
		}
	}
	for _, l := range []clListener{clPlaintext, clSASLSSL} {
		t.Run(l.name+"/unknown topic", func(t *testing.T) {
			f(t, l, clPassword, "no-such-logstore", "Unknown topic or partition")
		})
	}
	for _, l := range []clListener{clSASLSSL, clSASLText} {
		t.Run(l.name+"/wrong password", func(t *testing.T) {
			f(t, l, testAKID+"#wrong", testTopic, "Topic authorization failed")
		})
		t.Run(l.name+"/malformed password", func(t *testing.T) {
			f(t, l, "demo-akid-demo-aksecret", testTopic, "SASL authentication error: Authentication failed: the password must be AccessKeyId#AccessKeySecret")
		})
	}
}
