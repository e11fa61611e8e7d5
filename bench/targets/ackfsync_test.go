package targets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ack-fsync answers a Produce only once its frame is in its file: every
// acknowledged value is there when its acknowledgement arrives, in
// pipelined requests of several connections alike. ack-only, for
// contrast, writes no file.
func TestAckFsyncAnswersOnceWritten(t *testing.T) {
	dir := t.TempDir()
	a, err := StartAckOnly("127.0.0.1:0", nil, Topic, Partitions, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	path := filepath.Join(dir, "ack-fsync.log")
	f := func(client, n int) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic(Topic),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.DisableIdempotentWrite(),
			kgo.MaxProduceRequestsInflightPerBroker(5), kgo.ProducerLinger(0))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		errs := make(chan error, n)
		for i := range n {
			v := []byte(fmt.Sprintf("client %d record %d", client, i))
			cl.Produce(context.Background(), &kgo.Record{Value: v}, func(r *kgo.Record, err error) {
				if err == nil {
					var b []byte
					if b, err = os.ReadFile(path); err == nil && !bytes.Contains(b, r.Value) {
						err = fmt.Errorf("%q acknowledged before it was written", r.Value)
					}
				}
				errs <- err
			})
		}
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}
	done := make(chan struct{})
	for c := range 3 {
		go func() {
			defer func() { done <- struct{}{} }()
			f(c, 200)
		}()
	}
	for range 3 {
		<-done
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the file outlives Close: %v", err)
	}

	only, err := StartAckOnly("127.0.0.1:0", nil, Topic, Partitions, "")
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	if only.log != nil {
		t.Fatal("ack-only keeps a log")
	}
}
