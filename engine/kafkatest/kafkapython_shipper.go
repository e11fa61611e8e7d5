package kafkatest

// kafka-python as the fourth shipper of the fleet tests (FleetShipperOptions.
// KafkaPython): one long-lived producer with kafka-python's defaults, fed
// records as they are made, each acknowledgement or failure reported back
// per record.

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// startKafkaPython starts kafka-python sending to o.Front with its
// defaults (acks 1, retries 0, request timeout 30 s, metadata max age
// 5 min, reconnect backoff 50 ms to 1 s); what it fails is sent again, as
// a shipper's own retry loop would. It returns the function that sends
// one record.
func (s *FleetShippers) startKafkaPython(t testing.TB, o FleetShipperOptions) func(seq int) {
	t.Helper()
	c := s.Python
	cfg := PyConfig{Bootstrap: []string{o.Front}, Topic: o.Topic(c.Name), ClientID: "kafka-python-fleet", SecurityProtocol: "PLAINTEXT", Acks: 1}
	s.py = StartKafkaPython(t, cfg, func(a PyAck) {
		if a.OK {
			c.Ack(a.ID)
			return
		}
		// The class and Kafka's name, without the addresses in the
		// message, so the report counts errors by kind.
		kind, _, _ := strings.Cut(a.Error, ":")
		if a.ErrorName != "" {
			kind += " " + a.ErrorName
		}
		c.Failed(a.ID, errors.New(kind))
	})
	return func(seq int) { s.py.Send(PyRecord{ID: seq, Value: string(c.Value(seq))}) }
}

// finishKafkaPython waits until every record kafka-python was given is
// acknowledged (sending again what it failed), then closes it.
func (s *FleetShippers) finishKafkaPython(t testing.TB, deadline time.Time) {
	t.Helper()
	if !s.Python.ResendUntil(deadline, s.pySend) {
		t.Errorf("kafka-python: %d records never acknowledged", s.Python.Outstanding())
	}
	res, ok := s.py.Close(max(time.Until(deadline), 5*time.Second))
	if !ok || res.Fatal != "" || !res.Done {
		t.Errorf("kafka-python did not close cleanly (exited %v): %s", ok, res)
	}
}
