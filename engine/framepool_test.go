package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
)

// dataCheckingAppender completes each append after a random delay and
// counts the entries whose Data changed between Append and done: a request
// buffer given back to requestFrames too early, and read over by a later
// request, shows here.
type dataCheckingAppender struct {
	*MemoryAppender
	changed atomic.Int64
}

func (a *dataCheckingAppender) Append(k wal.StreamKey, e *wal.Entry, durable bool, done func(int64, error)) {
	want := bytes.Clone(e.Data)
	time.AfterFunc(time.Duration(rand.N(2000))*time.Microsecond, func() {
		if !bytes.Equal(e.Data, want) {
			a.changed.Add(1)
		}
		a.MemoryAppender.Append(k, e, durable, done)
	})
}

// TestFrameBuffersOutliveAppends: request buffers are reused only once
// their Produce is answered. Connections over gnet and TLS pipeline
// batches of different sizes (so they share buffer classes) to an
// appender slow to complete; every batch must reach it unchanged until it
// completes, and be stored as sent.
func TestFrameBuffersOutliveAppends(t *testing.T) {
	var app *dataCheckingAppender
	r := startRelayAppender(t, func(m *MemoryAppender) Appender {
		app = &dataCheckingAppender{MemoryAppender: m}
		return app
	}, func(o *Options) { o.MaxInFlightPerConn = 16 })

	const perConn, inflight = 150, 8
	conns := []*kafkatest.TConn{kafkatest.DialT(t, r.plain, nil), kafkatest.DialT(t, r.plain, nil), kafkatest.DialT(t, r.plain, nil)}
	for range 2 {
		c := kafkatest.DialT(t, r.saslSSL, r.tls)
		if resp := c.SASLPlain(testProject, testAKID+"#"+testSecret); resp.ErrorCode != 0 {
			t.Fatal("SASL failed")
		}
		conns = append(conns, c)
	}
	var mu sync.Mutex
	sent := map[string]bool{} // every batch's bytes
	var wg sync.WaitGroup
	for ci, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reqs := make([]struct {
				corr  int32
				batch []byte
			}, perConn)
			for i := range reqs {
				// 1 to 40 values of up to 3 KiB: frames from a few
				// hundred bytes to 120 KiB.
				values := make([]string, 1+rand.N(40))
				for j := range values {
					values[j] = fmt.Sprintf("conn %d request %d value %d ", ci, i, j) + strings.Repeat("x", rand.N(3000))
				}
				reqs[i].corr, reqs[i].batch = int32(i), kafkatest.RecordBatch(values...)
				mu.Lock()
				sent[string(reqs[i].batch)] = true
				mu.Unlock()
			}
			read := 0
			for i := range reqs {
				req := kafkatest.ProduceRequest(7, 1, testTopic, map[int32][]byte{0: reqs[i].batch})
				if _, err := c.Conn().Write(kafkatest.EncodeRequest(reqs[i].corr, req)); err != nil {
					t.Errorf("conn %d: write: %v", ci, err)
					return
				}
				for ; read <= i-inflight || (i == len(reqs)-1 && read < len(reqs)); read++ {
					frame, err := c.ReadFrame()
					if err == nil {
						var resp kmsg.Response
						if resp, err = kafkatest.ParseResponse(frame, reqs[read].corr, req); err == nil {
							err = kafkatest.CheckProduced(resp)
						}
					}
					if err != nil {
						t.Errorf("conn %d request %d: %v", ci, read, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := app.changed.Load(); n > 0 {
		t.Errorf("%d batches changed before their append completed", n)
	}
	entries := app.Entries(wal.StreamKey{Project: testProject, Logstore: testTopic, Partition: 0})
	if len(entries) != len(conns)*perConn {
		t.Errorf("%d entries stored, want %d", len(entries), len(conns)*perConn)
	}
	for i, e := range entries {
		if !sent[string(e.Data)] {
			t.Errorf("entry %d (%d bytes) is no batch that was sent", i, len(e.Data))
		}
	}
}
