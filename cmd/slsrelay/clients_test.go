package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// `slsrelay clients` prints the running relay's connected shippers, as a
// table or as the JSON the admin listener serves.
func TestClientsCommand(t *testing.T) {
	r := relaytest.Start(t, relaytest.Config(t))
	c := kafkatest.DialT(t, r.Plain.Addr, nil)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "clients-test", "9.9"
	c.RoundTrip(av)
	resp := c.RoundTrip(kafkatest.ProduceRequest(9, 1, "test-logstore-1", map[int32][]byte{0: kafkatest.RecordBatch("a", "b")})).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: error %d", code)
	}

	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := clientsCommand(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errOut := run("-admin", r.Addrs.Admin)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ADDRESS") {
		t.Fatalf("table:\n%s", out)
	}
	for _, want := range []string{c.Conn().LocalAddr().String(), "PLAINTEXT", kafkatest.ClientID, "clients-test/9.9", "test-logstore-1"} {
		if !strings.Contains(lines[1], want) {
			t.Fatalf("row %q lacks %q", lines[1], want)
		}
	}

	code, out, errOut = run("-admin", r.Addrs.Admin, "-json")
	var list []engine.Shipper
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Records != 2 {
		t.Fatalf("-json: exit %d, %s %s", code, out, errOut)
	}

	if code, _, errOut := run("-admin", r.Addrs.Admin, "extra"); code != 2 || !strings.Contains(errOut, "usage") {
		t.Fatalf("extra argument: exit %d, %s", code, errOut)
	}
	r.Close()
	if code, _, errOut := run("-admin", r.Addrs.Admin); code != 1 || !strings.Contains(errOut, "cannot reach") {
		t.Fatalf("relay stopped: exit %d, %s", code, errOut)
	}
}

// A shipper's last error shows with its age; empty fields as dashes.
func TestClientsTable(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var out bytes.Buffer
	writeClientsTable(&out, []engine.Shipper{{
		Address: "10.0.0.7:51000", Listener: "SASL_SSL", ClientID: "filebeat", User: "proj",
		Throttles: 2, ThrottledFor: 1500 * time.Millisecond,
		LastError: &engine.Refusal{Time: now.Add(-90 * time.Second), Reason: engine.RefusalUnknownTopic, Detail: "Metadata for topic \"x\""},
	}}, now)
	want := "unknown_topic 1m30s ago: Metadata for topic \"x\""
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "2× 1.5s") || !strings.Contains(out.String(), " - ") {
		t.Fatalf("table:\n%s\nwant %q", out.String(), want)
	}
	out.Reset()
	writeClientsTable(&out, nil, now)
	if out.String() != "no shippers connected\n" {
		t.Fatalf("empty: %q", out.String())
	}
}
