package engine

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClientsAcks0ThenClose: an acks=0 producer writes its requests and
// closes the connection at once (sarama's Close, kgo's Close, a short-lived
// kcat). A Kafka broker still handles every request it read before the
// close; the relay must too, or the records are lost while the producer
// believes them sent. (Fixed in 2fe1f36; before it, these lost all 20.)
func TestClientsAcks0ThenClose(t *testing.T) {
	t.Parallel()
	const n = 20
	r := startClRelay(t)
	t.Cleanup(func() { r.checkAllStreams(t) })
	check := func(t *testing.T, sent []clSent, exp clExpect) {
		deadline := time.Now().Add(3 * time.Second)
		for r.caseCount(t, testTopic4, 4, t.Name()) < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := r.caseCount(t, testTopic4, 4, t.Name()); got != n {
			t.Fatalf("%d of the %d records sent with acks=0 were stored: the relay dropped requests it had read when the producer closed its connection", got, n)
		}
		r.checkStored(t, testTopic4, 4, t.Name(), sent, exp)
	}
	for _, l := range []clListener{clPlaintext, clSASLSSL} {
		t.Run(l.name+"/sarama", func(t *testing.T) {
			t.Parallel()
			m := clSaramaModes[0]
			if l.sasl {
				m = clSaramaModes[2]
			}
			cfg := clSaramaConfig(r, sarama.V2_1_0_0, m, clPassword)
			cfg.Producer.RequiredAcks = sarama.NoResponse
			sent := clMakeRecords(t.Name(), n, 4, time.Now())
			p, err := sarama.NewSyncProducer([]string{r.addr(l)}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = p.SendMessages(clSaramaMessages(testTopic4, sent, cfg.Version))
			p.Close()
			if err != nil {
				t.Fatalf("produce: %v", err)
			}
			check(t, sent, clExpect{magic: 2, headers: true, timestamps: 'x'})
		})
		t.Run(l.name+"/kcat", func(t *testing.T) {
			t.Parallel()
			sent := clMakeRecords(t.Name(), n, 4, time.Now())
			for i := range sent {
				sent[i].Partition = 2
				sent[i].Headers = nil
			}
			args := append(clKcatArgs(r, l, clPassword), "-t", testTopic4, "-p", "2", "-X", "acks=0")
			from := time.Now().Add(-time.Second)
			if out, err := clKcatProduce(t, args, sent); err != nil {
				t.Fatalf("kcat: %v\n%s", err, out)
			}
			check(t, sent, clExpect{magic: 2, timestamps: 'w', from: from, to: time.Now().Add(time.Second)})
		})
		t.Run(l.name+"/kgo", func(t *testing.T) {
			t.Parallel()
			cl, err := kgo.NewClient(append(clKgoOpts(r, l, clPassword),
				kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite(),
				kgo.ProducerBatchCompression(kgo.NoCompression()))...)
			if err != nil {
				t.Fatal(err)
			}
			sent := clMakeRecords(t.Name(), n, 4, time.Now())
			ctx, cancel := context.WithTimeout(context.Background(), clTimeout)
			defer cancel()
			err = cl.ProduceSync(ctx, clKgoRecords(testTopic4, sent, true)...).FirstErr()
			cl.Close()
			if err != nil {
				t.Fatalf("produce: %v", err)
			}
			check(t, sent, clExpect{magic: 2, headers: true, timestamps: 'x'})
		})
	}
}
