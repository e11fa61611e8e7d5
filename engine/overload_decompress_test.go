package engine

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// TestOverloadDecompressedMessageSets: a compressed MessageSet whose
// wrapper cannot be counted by its offset (magic 0, or magic 1 at offset
// 0 as sarama and librdkafka write it) is decompressed before it is
// answered, into memory the budget does not count: a frame of a few KiB
// can ask for tens of MiB. Many connections sending such batches at once
// must not take the heap that far past the budget: decompression is CPU
// work, so it runs on at most GOMAXPROCS of them at a time, and what it
// holds is bounded by that, not by the connection count. (Before: 32
// connections grew the heap by about 540 MiB over a 4 MiB budget.)
func TestOverloadDecompressedMessageSets(t *testing.T) {
	const budget = 4 * mib
	const innerSize = 16 * mib // decompressed size of one batch
	const conns, rounds = 32, 3
	// Records of 1 MiB of one letter, which gzip shrinks a
	// thousandfold, in a wrapper at offset 0 (sarama's, librdkafka's).
	now := time.Now().UnixMilli()
	var inner []byte
	for i := range innerSize / mib {
		inner = append(inner, batchtest.Message(1, int64(i), 0, now, nil, bytes.Repeat([]byte{'a' + byte(i%26)}, mib-64))...)
	}
	set := batchtest.Message(1, 0, batchtest.Gzip.ID, now, nil, batchtest.Gzip.Compress(t, inner))
	inner = nil
	if len(set) > 256*kib {
		t.Fatalf("the batch is %d bytes compressed, want a small one", len(set))
	}
	r := startRelay(t, func(o *Options) { o.MaxBufferedBytes = budget })
	base := settledHeap()
	mp := sampleMem(t, r.srv, 2*time.Millisecond)
	err := fanOut(conns, conns, func(i int) error {
		k, err := kafkatest.Dial(r.plain, nil)
		if err != nil {
			return err
		}
		defer k.Close()
		for range rounds {
			req := kafkatest.ProduceRequest(2, 1, testTopic, map[int32][]byte{int32(i % 2): set})
			resp, err := k.RoundTrip(req, time.Minute)
			if err == nil {
				err = kafkatest.CheckProduced(resp)
			}
			if err != nil {
				return fmt.Errorf("conn %d: %w", i, err)
			}
		}
		return nil
	})
	mp.end()
	if err != nil {
		t.Fatal(err)
	}
	grew := mp.heap - base
	// Each decompression allocates about 3× its output as the output
	// grows, GOMAXPROCS at a time, and the collector lets garbage reach
	// as much again as is live: 100 to 140 MiB seen with GOMAXPROCS 2.
	bound := budget + 6*int64(runtime.GOMAXPROCS(0))*innerSize + 32*mib
	t.Logf("%d connections × %d batches of %d KiB compressed, %s decompressed; budget %s: heap grew by up to %s (bound %s, GOMAXPROCS %d)",
		conns, rounds, len(set)/kib, fmtMiB(innerSize), fmtMiB(budget), fmtMiB(grew), fmtMiB(bound), runtime.GOMAXPROCS(0))
	if grew > bound {
		t.Errorf("the heap grew by %s decompressing MessageSets, past %s: each connection decompresses at once, outside the budget", fmtMiB(grew), fmtMiB(bound))
	}
}
