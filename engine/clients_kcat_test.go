package engine

// librdkafka (Collectd, rsyslog, and many more) through kcat against the
// relay: every codec, acks 1 and -1, idempotent or not, over PLAINTEXT and
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
	args := []string{"-b", r.addr(l), "-X", "message.timeout.ms=15000", "-X", "socket.timeout.ms=10000"}
	switch {
	case l.tls:
		args = append(args, "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location="+r.caFile)
	case l.sasl:
		args = append(args, "-X", "security.protocol=SASL_PLAINTEXT")
	default:
		args = append(args, "-X", "security.protocol=PLAINTEXT")
	}
	if l.sasl {
		args = append(args, "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username="+testProject, "-X", "sasl.password="+password)
	}
	return args
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
