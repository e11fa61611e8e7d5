package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// TestSASLSwappedFieldsLogNoSecret: a shipper configured with the
// username and password swapped (AccessKeyId#AccessKeySecret as the
// username) fails to log in; the refusal's log line names the user it
// tried, but not the AccessKeySecret that came in its place.
func TestSASLSwappedFieldsLogNoSecret(t *testing.T) {
	t.Parallel()
	const secret = "swapped-secret-4f9c1d"
	logs := &kafkatest.LockedBuffer{}
	r := startRelay(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	c := kafkatest.DialT(t, r.saslText, nil)
	resp := c.SASLPlain(testAKID+"#"+secret, testProject)
	if resp.ErrorCode == 0 {
		t.Fatal("a login with the fields swapped succeeded")
	}
	if !strings.Contains(logs.String(), "SASL authentication failed") {
		t.Fatalf("the failed login was not logged: the check below looks at nothing:\n%s", logs)
	}
	var m bytes.Buffer
	metrics.WritePrometheus(&m, false)
	if strings.Contains(logs.String()+m.String(), secret) {
		t.Error("the AccessKeySecret given as the username appears in the log or the metrics")
	}
	for _, rf := range r.srv.RecentRefusals() {
		if strings.Contains(rf.Detail, secret) {
			t.Errorf("the AccessKeySecret appears in a refusal's detail: %q", rf.Detail)
		}
	}
}
