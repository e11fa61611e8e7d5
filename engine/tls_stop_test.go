package engine

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// TestStopIsNoHandshakeFailure: connections in their TLS handshake when a
// TLS listener stops are closed by the stop, not by their clients: no
// "TLS handshake failed" warning (whose fix tells the client to use TLS)
// and no refusal recorded for them. Each stop with clients connecting
// logged one per connection.
func TestStopIsNoHandshakeFailure(t *testing.T) {
	t.Parallel()
	_, serverTLS := selfSignedTLS(t)
	logs := &kafkatest.LockedBuffer{}
	srv, err := New(Options{Listeners: []ListenerOptions{{Name: "L", Bind: "127.0.0.1:0", Protocol: SASLSSL, TLS: serverTLS}},
		EventLoops: 1, Logger: slog.New(slog.NewTextHandler(logs, nil))}, testCatalog(), &MemoryAppender{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// Connections that say nothing: the listener waits in their handshake.
	for range 3 {
		c, err := net.DialTimeout("tcp", srv.Addr("L"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(200 * time.Millisecond) // accepted, in their handshake
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); strings.Contains(out, "TLS handshake failed") {
		t.Errorf("the stop logged handshake failures:\n%s", out)
	}
	if r := srv.RecentRefusals(); len(r) > 0 {
		t.Errorf("the stop recorded %d refusals, the first %+v", len(r), r[0])
	}
}
