package engine

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// BenchmarkAckPath measures the front end alone: Produce frames in over
// loopback, acks=1 responses out, with an appender that keeps nothing. Each
// connection keeps `inflight` requests pipelined, as Kafka clients do.
// Later issues compare against it to see regressions on the ack path.
func BenchmarkAckPath(b *testing.B) {
	for _, tc := range []struct {
		transport string
		conns     int
		batchKiB  int
	}{
		{"plaintext", 1, 64},
		{"plaintext", 8, 64},
		{"plaintext", 8, 960},
		{"sasl_ssl", 1, 64},
		{"sasl_ssl", 8, 64},
	} {
		b.Run(fmt.Sprintf("%s/conns=%d/batch=%dKiB", tc.transport, tc.conns, tc.batchKiB), func(b *testing.B) {
			r := startRelay(b, func(o *Options) { o.MaxInFlightPerConn = 16 })
			r.app.Discard = true
			values := make([]string, tc.batchKiB)
			for i := range values {
				values[i] = strings.Repeat("x", 1000)
			}
			frame := kafkatest.EncodeRequest(1, kafkatest.ProduceRequest(7, 1, testTopic, map[int32][]byte{0: kafkatest.RecordBatch(values...)}))
			conns := make([]*kafkatest.TConn, tc.conns)
			for i := range conns {
				if tc.transport == "plaintext" {
					conns[i] = kafkatest.DialT(b, r.plain, nil)
				} else {
					conns[i] = kafkatest.DialT(b, r.saslSSL, r.tls)
					if resp := conns[i].SASLPlain(testProject, testAKID+"#"+testSecret); resp.ErrorCode != 0 {
						b.Fatal("SASL failed")
					}
				}
			}
			const inflight = 5
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / tc.conns
			for i, c := range conns {
				n := per
				if i == 0 {
					n += b.N % tc.conns
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					pipeline(b, c, frame, n, inflight)
				}()
			}
			wg.Wait()
		})
	}
}

// pipeline sends the same frame n times keeping up to inflight unanswered,
// and reads every response.
func pipeline(b *testing.B, c *kafkatest.TConn, frame []byte, n, inflight int) {
	sent, read := 0, 0
	for read < n {
		for sent < n && sent-read < inflight {
			if _, err := c.Conn().Write(frame); err != nil {
				b.Error(err)
				return
			}
			sent++
		}
		if _, err := c.ReadFrame(); err != nil {
			b.Error(err)
			return
		}
		read++
	}
}
