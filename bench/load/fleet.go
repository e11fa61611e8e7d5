package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// Config is one fleet of producers.
type Config struct {
	Addr       string // bootstrap host:port
	Topic      string
	Partitions int // used by the raw fleet (it sends no Metadata)

	Conns   int  // producer connections
	Raw     bool // raw Produce requests (for thousands of connections) instead of franz-go clients
	Profile Profile
	Acks    int // 1 or -1 (0 is not measured: nothing to time)
	Pace    Pace
	Sizes   Sizes
	// OldClients pins franz-go to Kafka 0.10.0's versions: Produce v2 with
	// MessageSet v1, as Beats configured with `version: 0.10` send.
	OldClients bool

	TLS      *tls.Config // SASL_SSL when set with User
	User     string
	Password string

	// RawInterval is how often each raw connection sends a batch at a
	// fixed rate (default 1 s, like a shipper's flush).
	RawInterval time.Duration
}

// Run drives the fleet until ctx ends, then waits (at most drain) for
// what is in flight, and closes every connection.
func Run(ctx context.Context, cfg Config, st *Stats, drain time.Duration) error {
	if cfg.Conns < 1 {
		cfg.Conns = 1
	}
	if cfg.Sizes.Median == 0 {
		cfg.Sizes = DefaultSizes
	}
	if cfg.Acks == 0 {
		cfg.Acks = 1
	}
	if cfg.Raw {
		return runRaw(ctx, cfg, st, drain)
	}
	return runKgo(ctx, cfg, st, drain)
}

type hooks struct{ st *Stats }

func (h hooks) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if key == 0 && err == nil {
		h.st.WireBytes.Add(int64(n))
		h.st.Requests.Add(1)
	}
}

func (h hooks) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key == 0 && e.Err() == nil {
		h.st.ReqLat.Record(e.DurationE2E())
	}
}

func (h hooks) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	h.st.Throttles.Add(1)
	h.st.ThrottleUs.Add(d.Microseconds())
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("unknown compression %q", name)
}

// ClientOpts are the franz-go options of one producer of cfg.
func ClientOpts(cfg Config, st *Stats) ([]kgo.Opt, error) {
	c, err := codec(cfg.Profile.Compression)
	if err != nil {
		return nil, err
	}
	acks := kgo.LeaderAck()
	if cfg.Acks < 0 {
		acks = kgo.AllISRAcks()
	}
	inflight := cfg.Profile.InFlight
	if inflight < 1 {
		inflight = 5
	}
	batch := cfg.Profile.BatchMaxBytes
	if batch <= 0 {
		batch = 1_000_000
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Addr),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerBatchCompression(c),
		kgo.ProducerBatchMaxBytes(int32(batch)),
		kgo.RequiredAcks(acks),
		kgo.DisableIdempotentWrite(),
		kgo.MaxProduceRequestsInflightPerBroker(inflight),
		kgo.MaxBufferedRecords(4096), // Beats' memory queue holds 4096 events,
		kgo.ProduceRequestTimeout(30 * time.Second),
		kgo.RecordRetries(1 << 30),
		kgo.RetryBackoffFn(func(int) time.Duration { return time.Second }), // SLS asks shippers to retry after 1 s
		kgo.MetadataMinAge(time.Second),
		kgo.ClientID("slsbench"),
		kgo.WithHooks(hooks{st}),
	}
	if cfg.Profile.Linger > 0 {
		opts = append(opts, kgo.ProducerLinger(cfg.Profile.Linger))
	}
	if cfg.OldClients {
		opts = append(opts, kgo.MaxVersions(kversion.V0_10_0()))
	}
	if cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg.TLS.Clone()))
	}
	if cfg.User != "" {
		opts = append(opts, kgo.SASL(plain.Auth{User: cfg.User, Pass: cfg.Password}.AsMechanism()))
	}
	return opts, nil
}

func runKgo(ctx context.Context, cfg Config, st *Stats, drain time.Duration) error {
	opts, err := ClientOpts(cfg, st)
	if err != nil {
		return err
	}
	clients := make([]*kgo.Client, cfg.Conns)
	for i := range clients {
		if clients[i], err = kgo.NewClient(opts...); err != nil {
			for _, c := range clients[:i] {
				c.Close()
			}
			return err
		}
	}
	start := time.Now()
	// Records are produced under pctx, which outlives ctx by drain, so
	// those buffered when the run ends still complete instead of failing
	// with ctx's error.
	pctx, pcancel := context.WithCancel(context.Background())
	defer pcancel()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(drain)
		defer t.Stop()
		select {
		case <-t.C:
			pcancel()
		case <-pctx.Done():
		}
	}()
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			produceLoop(ctx, pctx, cl, cfg, st, newPacer(cfg.Pace, 1/float64(cfg.Conns), start), uint64(i))
		}()
	}
	wg.Wait()
	// Stop offering; give in-flight records drain to complete.
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	var ferr error
	for _, cl := range clients {
		if err := cl.Flush(dctx); err != nil && ferr == nil {
			ferr = err
		}
	}
	for _, cl := range clients {
		cl.Close()
	}
	if errors.Is(ferr, context.DeadlineExceeded) {
		return fmt.Errorf("records still in flight %v after the run", drain)
	}
	return nil
}

func produceLoop(ctx, pctx context.Context, cl *kgo.Client, cfg Config, st *Stats, p *pacer, seed uint64) {
	r := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	promise := func(rec *kgo.Record, err error) {
		if err != nil {
			st.Failed.Add(1)
			st.setErr(err)
			return
		}
		id, _, _ := ParseValue(rec.Value)
		st.Lat.Record(time.Since(rec.Timestamp))
		st.Acked.Add(1)
		st.AckedBytes.Add(int64(len(rec.Value)))
		st.AckedIDs.Set(id)
	}
	for ctx.Err() == nil {
		n := p.take(256, ctx.Done())
		for range n {
			now := time.Now()
			id := st.IDs.Next()
			size := cfg.Sizes.Draw(r)
			v := Value(make([]byte, 0, size+32), id, now, size, r)
			st.Sent.Add(1)
			cl.Produce(pctx, &kgo.Record{Value: v, Timestamp: now}, promise)
			if ctx.Err() != nil {
				return
			}
		}
	}
}
