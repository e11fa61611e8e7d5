package engine

import (
	"encoding/binary"
	"testing"
)

// TestParseRequestHeaderClientID: the client id is read right whether it
// repeats the previous request's (then reused) or not.
func TestParseRequestHeaderClientID(t *testing.T) {
	f := func(clientID *string, prev, want string) {
		t.Helper()
		frame := binary.BigEndian.AppendUint16(nil, 0) // Produce
		frame = binary.BigEndian.AppendUint16(frame, 7)
		frame = binary.BigEndian.AppendUint32(frame, 42)
		if clientID == nil {
			frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null
		} else {
			frame = binary.BigEndian.AppendUint16(frame, uint16(len(*clientID)))
			frame = append(frame, *clientID...)
		}
		frame = append(frame, "body"...)
		h, body, err := parseRequestHeader(frame, prev)
		if err != nil || h.clientID != want || h.corrID != 42 || string(body) != "body" {
			t.Errorf("client id %v after %q: got %q, corr %d, body %q, %v; want %q", clientID, prev, h.clientID, h.corrID, body, err, want)
		}
	}
	id, other, empty := "filebeat", "sarama", ""
	f(&id, "", "filebeat")
	f(&id, "filebeat", "filebeat")
	f(&id, "filebeat-2", "filebeat")
	f(&other, "filebeat", "sarama")
	f(&empty, "filebeat", "")
	f(nil, "filebeat", "")
}
