package engine

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
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
		// format: "" 1000-byte records in an uncompressed v2 batch of
		// batchKiB; "v2-gzip" 2048 log lines (~1 MiB) gzipped in a v2
		// batch (Produce v7); "v1-gzip" the same in a gzip wrapper of a
		// MessageSet v1 (Produce v2) at the offset of its last message,
		// as Java clients and franz-go write it (counted unopened);
		// "v1-gzip-offset0" the wrapper at offset 0, as Beats with
		// `version: 0.10` (sarama) and librdkafka write it (opened).
		format string
	}{
		{"plaintext", 1, 64, ""},
		{"plaintext", 8, 64, ""},
		{"plaintext", 8, 960, ""},
		{"sasl_ssl", 1, 64, ""},
		{"sasl_ssl", 8, 64, ""},
		{"plaintext", 8, 0, "v2-gzip"},
		{"plaintext", 8, 0, "v1-gzip"},
		{"plaintext", 8, 0, "v1-gzip-offset0"},
		{"sasl_ssl", 8, 0, "v2-gzip"},
	} {
		name := fmt.Sprintf("%s/conns=%d/batch=%dKiB", tc.transport, tc.conns, tc.batchKiB)
		if tc.format != "" {
			name = fmt.Sprintf("%s/conns=%d/%s", tc.transport, tc.conns, tc.format)
		}
		b.Run(name, func(b *testing.B) {
			r := startRelay(b, func(o *Options) { o.MaxInFlightPerConn = 16 })
			r.app.Discard = true
			frame := benchProduceFrame(b, tc.format, tc.batchKiB)
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
			cpu0 := processCPU()
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
			// CPU time, both sides: less swayed by a busy machine than
			// the wall clock, and the clients' share is the same code
			// before and after a change.
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

// processCPU is the user and system CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchProduceFrame is one framed Produce request of the given format
// (see BenchmarkAckPath) to partition 0 of testTopic, acks=1.
func benchProduceFrame(b *testing.B, format string, batchKiB int) []byte {
	var recs []batchtest.Record
	for i := range 2048 {
		// Log lines of 300 to 700 bytes that compress like logs do.
		line := fmt.Sprintf(`{"@timestamp":"2024-05-01T12:%02d:%02d.%03dZ","level":"info","host":"web-%03d","path":"/api/v1/items/%d","status":%d,"msg":"`,
			i%60, (i*7)%60, i%1000, i%37, i*7919%100000, 200+i%5*50)
		for len(line) < 300+(i*131)%400 {
			line += "request served by upstream in " + strconv.Itoa(i*31%977) + " ms "
		}
		recs = append(recs, batchtest.Record{Value: []byte(line + `"}`), Timestamp: 1_700_000_000_000 + int64(i)})
	}
	switch format {
	case "v2-gzip":
		return kafkatest.EncodeRequest(1, kafkatest.ProduceRequest(7, 1, testTopic, map[int32][]byte{0: batchtest.RecordBatch(b, recs, batchtest.Gzip, nil)}))
	case "v1-gzip", "v1-gzip-offset0":
		set := batchtest.MessageSet(b, 1, recs, batchtest.Gzip, 0)
		if format == "v1-gzip-offset0" {
			clear(set[:8]) // the wrapper's offset, outside its CRC
		}
		return kafkatest.EncodeRequest(1, kafkatest.ProduceRequest(2, 1, testTopic, map[int32][]byte{0: set}))
	}
	values := make([]string, batchKiB)
	for i := range values {
		values[i] = strings.Repeat("x", 1000)
	}
	return kafkatest.EncodeRequest(1, kafkatest.ProduceRequest(7, 1, testTopic, map[int32][]byte{0: kafkatest.RecordBatch(values...)}))
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
