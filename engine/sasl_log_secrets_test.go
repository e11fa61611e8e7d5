package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// TestSASLSwappedFieldsLogNoSecret: a shipper configured with
// AccessKeyId#AccessKeySecret as its username (the fields swapped, or the
// key pasted into both) fails to log in, since no Project has a '#'; the
// refusal's log line names the user it tried, but not the AccessKeySecret
// that came in its place, and no metric label carries it.
func TestSASLSwappedFieldsLogNoSecret(t *testing.T) {
	t.Parallel()
	f := func(name, secret, user, password string) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			logs := &kafkatest.LockedBuffer{}
			r := startRelay(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
			c := kafkatest.DialT(t, r.saslText, nil)
			resp := c.SASLPlain(user, password)
			if resp.ErrorCode == 0 {
				// Logged in: what a Produce's refusal would log and count.
				c.RoundTrip(kafkatest.ProduceValues(testTopic, 0, 1, "v"))
				t.Error("a login with AccessKeyId#AccessKeySecret as its username succeeded")
			} else if !strings.Contains(logs.String(), "SASL authentication failed") {
				t.Fatalf("the failed login was not logged: the check below looks at nothing:\n%s", logs)
			}
			var m bytes.Buffer
			metrics.WritePrometheus(&m, false)
			if strings.Contains(logs.String()+m.String(), secret) {
				t.Error("the AccessKeySecret given as the username appears in the log or the metrics")
			}
			for _, rf := range r.srv.RecentRefusals() {
				if strings.Contains(rf.Detail+rf.Project, secret) {
					t.Errorf("the AccessKeySecret appears in a refusal: %+v", rf.Reason)
				}
			}
		})
	}
	// Secrets of their own: the metrics are the process's.
	f("swapped", "swapped-secret-4f9c1d", testAKID+"#swapped-secret-4f9c1d", testProject)
	f("key in both", "pasted-secret-8a2e7b", testAKID+"#pasted-secret-8a2e7b", testAKID+"#pasted-secret-8a2e7b")
}
