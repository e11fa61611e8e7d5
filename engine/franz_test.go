package engine

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

func TestFranzSmoke(t *testing.T) {
	r := startRelay(t)
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"plaintext", []kgo.Opt{kgo.SeedBrokers(r.plain)}},
		{"sasl_ssl", []kgo.Opt{kgo.SeedBrokers(r.saslSSL), kgo.DialTLSConfig(r.tls), kgo.SASL(plain.Auth{User: testProject, Pass: testAKID + "#" + testSecret}.AsMechanism())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := kgo.NewClient(append(tc.opts, kgo.DefaultProduceTopic(testTopic))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for i := 0; i < 10; i++ {
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello"), Partition: 0}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	t.Logf("entries: %d %d", len(r.entries(testTopic, 0)), len(r.entries(testTopic, 1)))
}
