package engine

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// TestTLSConnectionAfterIdle: a SASL_SSL connection that went idle (its
// reading goroutine parked on the socket, crypto/tls's read buffers let
// go, see tls_idle.go) serves requests as before: large ones spanning
// several TLS records, and pipelined ones arriving in one write.
func TestTLSConnectionAfterIdle(t *testing.T) {
	if !tlsConnBuffers.ok {
		t.Fatal("crypto/tls.Conn's rawInput, input and hand are no longer a bytes.Buffer, a bytes.Reader and a bytes.Buffer: releaseTLSBuffers does nothing on this toolchain; adapt tls_buffers.go")
	}
	const idleAfter = 50 * time.Millisecond
	r := startRelay(t, func(o *Options) { o.TLSIdleAfter = idleAfter })
	c := kafkatest.DialT(t, r.saslSSL, r.tls)
	if resp := c.SASLPlain(testProject, testAKID+"#"+testSecret); resp.ErrorCode != 0 {
		t.Fatalf("SASL PLAIN: error %d", resp.ErrorCode)
	}
	var want []string
	request := func(round, i int) kmsg.Request {
		values := make([]string, 40) // 40 KiB: three TLS records
		for j := range values {
			values[j] = fmt.Sprintf("round %d request %d record %d %s", round, i, j, strings.Repeat("x", 1000))
		}
		want = append(want, values...)
		return kafkatest.ProduceValues(testTopic, 0, 1, values...)
	}
	for round := range 3 {
		time.Sleep(3 * idleAfter)
		reqs := []kmsg.Request{request(round, 0), request(round, 1)}
		corrs, err := c.Conn().SendAll(reqs...)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, corr := range corrs {
			if err := kafkatest.CheckProduced(c.Read(corr, reqs[i])); err != nil {
				t.Fatalf("round %d, request %d: %v", round, i, err)
			}
		}
	}
	// Idle again: the server's side of the connection lets go of its
	// record buffer.
	released := tlsRecordBuffersReleased.Load()
	time.Sleep(3 * idleAfter)
	if tlsRecordBuffersReleased.Load() == released {
		t.Error("an idle TLS connection kept its record buffer")
	}

	var got []string
	var d batch.Decoder
	for _, e := range r.entries(testTopic, 0) {
		if err := d.Decode(e.Magic, e.Data, batch.DecodeOptions{}, func(rec *batch.Record) error {
			got = append(got, string(rec.Value))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stored %d records, want the %d sent, in order", len(got), len(want))
	}
}

// A TLS connection behind a PROXY header parks on its socket like any
// other once what came with the header is read; while bytes read past
// the header are still held, it must not (the socket would not show them).
func TestRawConnOfBehindProxyHeader(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := func(rest []byte, want bool) {
		t.Helper()
		got := rawConnOf(tls.Server(&prefixedConn{Conn: c, rest: rest}, &tls.Config{})) != nil
		if got != want {
			t.Fatalf("rawConnOf with %d bytes left after the header: socket %v, want %v", len(rest), got, want)
		}
	}
	f(nil, true)
	f([]byte{22, 3, 1}, false)
}
