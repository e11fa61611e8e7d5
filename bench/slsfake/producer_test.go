package slsfake

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/aliyun-log-go-sdk/producer"
	"github.com/go-kit/kit/log"
)

type countingCallback struct{ ok, failed *atomic.Int64 }

func (c countingCallback) Success(*producer.Result) { c.ok.Add(1) }
func (c countingCallback) Fail(*producer.Result)    { c.failed.Add(1) }

// TestProducer sends through the SDK's own producer (what the project will
// benchmark against), with and without hash keys, lz4 and zstd, while a
// share of its requests fail with 500s that it must retry.
func TestProducer(t *testing.T) {
	f := func(name string, compress int, hashed bool) {
		t.Run(name, func(t *testing.T) {
			s := start(t, testConfig())
			if _, err := s.AddFault(Fault{Ops: []string{OpPutLogs}, Share: 0.25, Status: 500}); err != nil {
				t.Fatal(err)
			}
			cfg := producer.GetDefaultProducerConfig()
			cfg.Endpoint = s.Endpoint()
			cfg.AccessKeyID, cfg.AccessKeySecret = "demo-akid", "demo-aksecret"
			cfg.HTTPClient = s.HTTPClient()
			cfg.CompressType = compress
			cfg.LingerMs = 100      // the SDK resets anything lower to 2000
			cfg.MaxBatchCount = 100 // at least 20 requests, so the fault hits
			cfg.BaseRetryBackoffMs = 10
			cfg.MaxRetryBackoffMs = 50
			cfg.Logger = log.NewNopLogger()
			if raceEnabled {
				// The SDK's Client.initHttpClient fills in defaults on the
				// first request while holding only a read lock, a data race
				// between the producer's concurrent senders that the race
				// detector reports (an SDK bug, harmless in practice). One
				// sender at a time avoids it.
				cfg.MaxIoWorkerCount = 1
			}
			cfg.DisableRuntimeMetrics = true
			p, err := producer.NewProducer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p.Start()
			var ok, failed atomic.Int64
			const n = 2000
			for i := range n {
				l := producer.GenerateLog(uint32(time.Now().Unix()), map[string]string{"i": fmt.Sprint(i), "msg": "hello"})
				cb := countingCallback{&ok, &failed}
				if hashed {
					err = p.HashSendLogWithCallBack(proj, ls2, fmt.Sprint("key", i%7), "topic", "src", l, cb)
				} else {
					err = p.SendLogWithCallBack(proj, ls2, "topic", "src", l, cb)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			// Wait for every callback before closing: a closing producer
			// no longer retries, so a batch whose send failed just then
			// would be reported failed.
			deadline := time.Now().Add(20 * time.Second)
			for ok.Load()+failed.Load() < n && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if err := p.Close(20_000); err != nil {
				t.Fatal(err)
			}
			if failed.Load() != 0 || s.LogCount(proj, ls2) != n {
				t.Fatalf("producer: %d ok callbacks, %d failed; stand-in holds %d logs, want %d", ok.Load(), failed.Load(), s.LogCount(proj, ls2), n)
			}
			seen := make(map[string]bool)
			for _, l := range s.Logs(proj, ls2) {
				for _, kv := range l.Contents {
					if kv.Key == "i" {
						seen[kv.Value] = true
					}
				}
				if l.Topic != "topic" || l.Source != "src" {
					t.Fatalf("log %+v", l)
				}
			}
			if len(seen) != n {
				t.Fatalf("%d distinct logs, want %d", len(seen), n)
			}
			if st := s.Stats(); st.FaultHits == 0 {
				t.Fatal("no fault was hit: the retry path went untested")
			}
		})
	}
	f("lb-lz4", 0, false)
	f("hash-zstd", 2, true)
}
