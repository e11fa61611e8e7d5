package kafkatest

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A response is matched to its request by correlation id and parsed with
// the request's version; one that answers another request is an error.
func TestConnRoundTrip(t *testing.T) {
	f := func(name string, answerCorr func(int32) int32, wantErr string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			client, server := net.Pipe()
			defer server.Close()
			c := NewConn(client)
			defer c.Close()
			go func() {
				var size [4]byte
				if _, err := server.Read(size[:]); err != nil {
					return
				}
				req := make([]byte, binary.BigEndian.Uint32(size[:]))
				if _, err := server.Read(req); err != nil {
					return
				}
				// Header v1: key, version, correlation id, client id.
				if got := string(req[10 : 10+binary.BigEndian.Uint16(req[8:])]); got != ClientID {
					t.Errorf("client id %q, want %q", got, ClientID)
				}
				resp := kmsg.NewPtrMetadataResponse()
				resp.Version = 4
				resp.ThrottleMillis = 42
				body := binary.BigEndian.AppendUint32(nil, uint32(answerCorr(int32(binary.BigEndian.Uint32(req[4:])))))
				body = resp.AppendTo(body)
				server.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
			}()
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 4
			resp, err := c.RoundTrip(req, 5*time.Second)
			switch {
			case wantErr == "" && err != nil:
				t.Fatal(err)
			case wantErr == "" && resp.(*kmsg.MetadataResponse).ThrottleMillis != 42:
				t.Fatalf("response %+v, want throttle 42", resp)
			case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
				t.Fatalf("error %v, want one containing %q", err, wantErr)
			}
		})
	}
	f("answered", func(corr int32) int32 { return corr }, "")
	f("another request's answer", func(corr int32) int32 { return corr + 1 }, "correlation id 2, want 1")
}

// WaitClosed tells a connection the peer closed from one it keeps open.
func TestConnWaitClosed(t *testing.T) {
	client, server := net.Pipe()
	c := NewConn(client)
	defer c.Close()
	if _, err := c.WaitClosed(50 * time.Millisecond); err == nil {
		t.Fatal("an open connection reported closed")
	}
	server.Close()
	if _, err := c.WaitClosed(time.Second); err != nil {
		t.Fatal(err)
	}
}
