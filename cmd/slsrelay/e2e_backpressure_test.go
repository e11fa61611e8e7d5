package main

// Backpressure end to end: with the stand-in slowed (a small per-shard
// write quota and added latency), a stream's backlog grows past
// throttle.soft_backlog_bytes and the relay throttles its producers:
// franz-go is told throttle_time_ms and waits, sarama is measurably slowed,
// and so is a client that ignores the field altogether, because the relay
// stops reading a throttled connection for the throttle's time (KIP-219).
// The relay's memory stays bounded meanwhile, and when the stand-in
// recovers every acknowledged record is delivered.
//
// IBM/sarama v1.61 does not ignore the field: Broker.handleThrottledResponse
// arms a timer from every response's ThrottleTime and sendInternal waits
// for it (waitIfThrottled) before the next request to that broker, so its
// slowdown is its own wait and the relay's mute together. Clients that do
// ignore it (the Beats' older sarama fork) are stood for by
// ignoringProducer, which only the mute can slow.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
)

// TestE2EBackpressure: see the file comment. Not parallel: it measures
// this process's RSS, and the relay (with its WAL, writers and the
// stand-in) runs in this process, so other tests would blur the figure.
func TestE2EBackpressure(t *testing.T) {
	const (
		soft        = 256 << 10 // throttle.soft_backlog_bytes
		maxThrottle = time.Second
		logstore    = "e2e-01" // 2 shards
		// The stand-in's slowness: what each shard accepts, and a delay
		// on every PutLogs.
		shardQuota = 8 << 10
		latency    = 100 * time.Millisecond
		// The slowdown a producer must see past the soft limit, as a
		// ratio of rates (1 s throttles against round trips of
		// milliseconds: 100× and more is typical).
		minSlowdown = 5.0
	)
	r := startTestRelay(t, func(c *relay.Config) {
		c.Throttle.SoftBacklogBytes = soft
		c.Throttle.MaxThrottle = maxThrottle
		// Small LogGroups, so the quota meters delivery finely instead of
		// letting one large PutLogs through on credit.
		c.SLS.LogGroup.MaxBytes = 16 << 10
	})
	rss := sampleRSS(t, 50*time.Millisecond)
	if err := r.fake.SetQuota(relaytest.Project, logstore, slsfake.Quota{BytesPerSec: shardQuota}); err != nil {
		t.Fatal(err)
	}
	faultID, err := r.fake.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Project: relaytest.Project, Logstore: logstore, Latency: latency})
	if err != nil {
		t.Fatal(err)
	}
	stream := func(p int32) wal.StreamKey {
		return wal.StreamKey{Project: relaytest.Project, Logstore: logstore, Partition: p}
	}
	throttleOf := func(p int32) time.Duration { return r.Throttle().ThrottleTime(stream(p), 0) }

	// Every acknowledged record, by id.
	var mu sync.Mutex
	var acked []sent
	nextID := 0
	newRecs := func(n int, partition int32, size int) []sent {
		mu.Lock()
		defer mu.Unlock()
		recs := make([]sent, n)
		for i := range recs {
			id := e2eID(nextID)
			nextID++
			v := id + " backpressure"
			// Varied filler, so that the LogGroups do not compress to
			// nothing on their way to the stand-in.
			var fill strings.Builder
			for x := uint32(nextID) * 2654435761; len(v)+fill.Len() < size; x = x*1664525 + 1013904223 {
				fill.WriteString(" " + strconv.FormatUint(uint64(x), 36))
			}
			v += fill.String()
			recs[i] = sent{ID: id, Partition: partition, Value: []byte(v), Want: []slsfake.KV{{Key: "content", Value: v}}}
		}
		return recs
	}
	ack := func(recs ...sent) {
		mu.Lock()
		acked = append(acked, recs...)
		mu.Unlock()
	}
	from := time.Now()

	// Below the soft limit: the rate of a sarama producer and of a client
	// that ignores throttle_time_ms, one request after the other.
	sp, err := sarama.NewSyncProducer([]string{r.Plain.Addr}, r.saramaConfig(lPlain, sarama.V2_1_0_0, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	raw, err := dialIgnoringProducer(r.Plain.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.close()
	saramaBelow, err := saramaRate(sp, logstore, newRecs(20, 0, 100), ack)
	if err != nil {
		t.Fatalf("sarama below the soft limit: %v", err)
	}
	rawBelow, _, err := raw.rate(logstore, newRecs(20, 0, 100), ack)
	if err != nil {
		t.Fatalf("raw producer below the soft limit: %v", err)
	}
	if d := throttleOf(0); d != 0 {
		t.Fatalf("throttled for %v before any backlog", d)
	}

	// A franz-go producer fills both streams' backlogs past the soft
	// limit (the stand-in takes 8 KiB/s a shard meanwhile).
	hook := &throttleHook{}
	cl := newKgo(t, append(r.kgoOpts(lPlain, ""), kgo.WithHooks(hook),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(512<<10))...)
	var fill []sent
	for p := range int32(2) {
		fill = append(fill, newRecs(768, p, 1<<10)...) // 768 KiB a stream: 3× the soft limit
	}
	t0 := time.Now()
	if err := produceKgo(t, cl, logstore, fill); err != nil {
		t.Fatalf("kgo filling the backlog: %v", err)
	}
	ack(fill...)
	filled := time.Since(t0)
	// The throttle reads the backlog once a second.
	waitFor(t, 10*time.Second, "both streams throttled at max_throttle", func() bool {
		return throttleOf(0) >= maxThrottle*9/10 && throttleOf(1) >= maxThrottle*9/10
	})
	// (a) kgo is told: what it sends now is answered with a throttle.
	more := newRecs(20, 1, 100)
	if err := produceKgo(t, cl, logstore, more); err != nil {
		t.Fatalf("kgo past the soft limit: %v", err)
	}
	ack(more...)
	n, longest := hook.n.Load(), time.Duration(hook.longest.Load())
	t.Logf("kgo: filled 2 × 768 KiB in %v; told of %d throttles, the longest %v", filled.Round(time.Millisecond), n, longest)
	if n == 0 {
		t.Errorf("kgo saw no throttle_time_ms past the soft limit")
	}
	if longest > maxThrottle {
		t.Errorf("kgo was throttled for %v, more than throttle.max_throttle %v", longest, maxThrottle)
	}

	// (b) Above the soft limit, sarama and the client that ignores the
	// field, at once (throttles are per connection).
	var saramaAbove, rawAbove float64
	var rawThrottle int32
	var saramaErr, rawErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		saramaAbove, saramaErr = saramaRate(sp, logstore, newRecs(4, 0, 100), ack)
	}()
	go func() {
		defer wg.Done()
		rawAbove, rawThrottle, rawErr = raw.rate(logstore, newRecs(4, 0, 100), ack)
	}()
	wg.Wait()
	if saramaErr != nil {
		t.Fatalf("sarama above the soft limit: %v", saramaErr)
	}
	if rawErr != nil {
		t.Fatalf("raw producer above the soft limit: %v", rawErr)
	}
	t.Logf("sarama %.1f → %.1f requests/s (%.0f× slower); a client ignoring throttle_time_ms %.1f → %.1f requests/s (%.0f× slower, told %d ms)",
		saramaBelow, saramaAbove, saramaBelow/saramaAbove, rawBelow, rawAbove, rawBelow/rawAbove, rawThrottle)
	if saramaBelow/saramaAbove < minSlowdown {
		t.Errorf("sarama: %.1f requests/s below the soft limit, %.1f above: want at least %.0f× slower", saramaBelow, saramaAbove, minSlowdown)
	}
	if rawBelow/rawAbove < minSlowdown {
		t.Errorf("client ignoring throttle_time_ms: %.1f requests/s below the soft limit, %.1f above: want at least %.0f× slower (the relay must not read a throttled connection)", rawBelow, rawAbove, minSlowdown)
	}
	if rawThrottle <= 0 {
		t.Errorf("the Produce answers past the soft limit carried throttle_time_ms %d", rawThrottle)
	}

	// (d) The stand-in recovers: everything acknowledged is delivered.
	if err := r.fake.SetQuota(relaytest.Project, logstore, slsfake.Quota{}); err != nil {
		t.Fatal(err)
	}
	r.fake.RemoveFault(faultID)
	t0 = time.Now()
	r.waitIDs(t, logstore, acked, e2eTimeout)
	t.Logf("after recovery, %d acknowledged records delivered in %v", len(acked), time.Since(t0).Round(time.Millisecond))
	setWindow(acked, from, time.Now())
	r.checkDelivered(t, logstore, acked, false)

	// (c) Memory. The relay runs in this process, so VmRSS is the
	// relay's (engine, WAL with its badger memtables and caches, writers)
	// plus the stand-in's and the clients'.
	peak, base := rss.finish()
	t.Logf("RSS: %.0f MiB at the start, peak %.0f MiB (bound %d MiB)", float64(base)/(1<<20), float64(peak)/(1<<20), e2eBackpressureRSS>>20)
	if peak > e2eBackpressureRSS {
		t.Errorf("RSS peaked at %.0f MiB, over the bound of %d MiB", float64(peak)/(1<<20), e2eBackpressureRSS>>20)
	}
}

// e2eBackpressureRSS bounds the process's RSS during TestE2EBackpressure:
// seen 65 MiB at the peak (190–220 MiB under the race detector, whose
// shadow memory multiplies it).
var e2eBackpressureRSS = map[bool]int64{false: 256 << 20, true: 1 << 30}[e2eRace]

// throttleHook counts the throttles a kgo client is told of.
type throttleHook struct {
	n       atomic.Int64
	longest atomic.Int64 // time.Duration
}

var _ kgo.HookBrokerThrottle = (*throttleHook)(nil)

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d <= 0 {
		return
	}
	h.n.Add(1)
	for {
		cur := h.longest.Load()
		if int64(d) <= cur || h.longest.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// saramaRate sends recs one at a time (each waits for its ack) and
// returns the rate in requests per second; acked records go to ack.
func saramaRate(sp sarama.SyncProducer, topic string, recs []sent, ack func(...sent)) (float64, error) {
	start := time.Now()
	for _, s := range recs {
		done := make(chan error, 1)
		go func() {
			_, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: s.Partition, Value: sarama.ByteEncoder(s.Value)})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				return 0, fmt.Errorf("record %s: %w", s.ID, err)
			}
		case <-time.After(e2eTimeout):
			return 0, fmt.Errorf("record %s: no answer in %v", s.ID, e2eTimeout)
		}
		ack(s)
	}
	return float64(len(recs)) / time.Since(start).Seconds(), nil
}

// ignoringProducer speaks just enough Kafka to produce (Produce v7,
// acks=1, one record per request) and ignores throttle_time_ms: it sends
// each request as soon as the previous one is answered, as the Beats'
// sarama fork and other old clients do.
type ignoringProducer struct{ c *kafkatest.Conn }

func dialIgnoringProducer(addr string) (*ignoringProducer, error) {
	c, err := kafkatest.Dial(addr, nil)
	if err != nil {
		return nil, err
	}
	return &ignoringProducer{c: c}, nil
}

func (p *ignoringProducer) close() { p.c.Close() }

// rate produces recs one request each and returns requests per second
// and the largest throttle_time_ms the relay asked for.
func (p *ignoringProducer) rate(topic string, recs []sent, ack func(...sent)) (float64, int32, error) {
	var throttle int32
	start := time.Now()
	for _, s := range recs {
		ms, err := p.produce(topic, s.Partition, s.Value)
		if err != nil {
			return 0, 0, fmt.Errorf("record %s: %w", s.ID, err)
		}
		throttle = max(throttle, ms)
		ack(s)
	}
	return float64(len(recs)) / time.Since(start).Seconds(), throttle, nil
}

func (p *ignoringProducer) produce(topic string, partition int32, value []byte) (int32, error) {
	resp, err := p.produceBatch(topic, partition, kafkatest.ProducerBatch(-1, -1, -1, string(value)))
	if err != nil {
		return 0, err
	}
	return resp.ThrottleMillis, nil
}

// produceBatch sends one batch with acks=1 and returns the answer, or an
// error if it carries one.
func (p *ignoringProducer) produceBatch(topic string, partition int32, batch []byte) (*kmsg.ProduceResponse, error) {
	resp, err := p.c.RoundTrip(kafkatest.ProduceRequest(7, 1, topic, map[int32][]byte{partition: batch}), e2eTimeout)
	if err != nil {
		return nil, err
	}
	if err := kafkatest.CheckProduced(resp); err != nil {
		return nil, err
	}
	return resp.(*kmsg.ProduceResponse), nil
}

// rssSampler keeps this process's peak VmRSS.
type rssSampler struct {
	base, peak atomic.Int64
	stop       chan struct{}
	done       chan struct{}
}

func sampleRSS(t testing.TB, every time.Duration) *rssSampler {
	t.Helper()
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	b, err := vmRSS()
	if err != nil {
		t.Skipf("cannot read this process's RSS: %v", err)
	}
	s.base.Store(b)
	s.peak.Store(b)
	go func() {
		defer close(s.done)
		for {
			if v, err := vmRSS(); err == nil && v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-s.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	t.Cleanup(func() { s.finish() })
	return s
}

func (s *rssSampler) finish() (peak, base int64) {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return s.peak.Load(), s.base.Load()
}

// vmRSS reads VmRSS from /proc/self/status.
func vmRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 2 {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS line")
}
