package main

// Faults between the relay and SLS, and what shippers see: injected 500s
// and connection resets, an SLS outage under load, a logstore deleted under
// the relay (dead letters, then replay), a wrong key and a missing
// logstore, and a shard split during load.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
)

// loadRecords returns n plain records with ids from first, over partitions
// round-robin, stamped by the client.
func loadRecords(first, n int, partitions int32) []sent {
	recs := make([]sent, n)
	for i := range recs {
		id := e2eID(first + i)
		v := fmt.Sprintf("%s load record %s", id, strings.Repeat("lorem ipsum dolor sit amet ", 4))
		recs[i] = sent{ID: id, Partition: int32(first+i) % partitions, Value: []byte(v),
			Want: []slsfake.KV{{Key: "content", Value: v}}}
	}
	return recs
}

// load produces batches of records with one client until ctx ends,
// waiting for each batch's acks, and collects what was acknowledged.
type load struct {
	cl         *kgo.Client
	topic      string
	partitions int32
	batch      int
	pause      time.Duration
	ids        *atomic.Int64 // shared between loads: ids stay unique

	mu    sync.Mutex
	acked []sent
	errs  []error
	// ackedAt records when each batch was acknowledged, took how long
	// it took from the produce call.
	ackedAt []time.Time
	took    []time.Duration
}

func (l *load) run(ctx context.Context) {
	for ctx.Err() == nil {
		first := int(l.ids.Add(int64(l.batch))) - l.batch
		recs := loadRecords(first, l.batch, l.partitions)
		pctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		t0 := time.Now()
		err := produceKgoCtx(pctx, l.cl, l.topic, recs)
		cancel()
		l.mu.Lock()
		if err != nil {
			l.errs = append(l.errs, err)
		} else {
			l.acked = append(l.acked, recs...)
			l.ackedAt = append(l.ackedAt, time.Now())
			l.took = append(l.took, time.Since(t0))
		}
		l.mu.Unlock()
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(l.pause):
		}
	}
}

// ackedBetween counts batches acknowledged in [from, to], and returns the
// longest any batch waited for its acks.
func (l *load) ackedBetween(from, to time.Time) (n int, slowest time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, at := range l.ackedAt {
		if !at.Before(from) && !at.After(to) {
			n++
		}
		slowest = max(slowest, l.took[i])
	}
	return n, slowest
}

func produceKgoCtx(ctx context.Context, cl *kgo.Client, topic string, recs []sent) error {
	krs := make([]*kgo.Record, len(recs))
	for i, s := range recs {
		krs[i] = &kgo.Record{Topic: topic, Partition: s.Partition, Key: s.Key, Value: s.Value, Headers: s.Headers, Timestamp: s.Time}
	}
	return cl.ProduceSync(ctx, krs...).FirstErr()
}

// waitIDs waits until every record's id is among the logstore's logs (as
// the stand-in stores them; duplicates do not count twice).
func (r *testRelay) waitIDs(t testing.TB, logstore string, recs []sent, timeout time.Duration) {
	t.Helper()
	missing := len(recs)
	deadline := time.Now().Add(timeout)
	for {
		if r.fake.LogCount(relaytest.Project, logstore) >= len(recs) {
			have := map[string]bool{}
			for _, l := range r.fake.Logs(relaytest.Project, logstore) {
				for _, kv := range l.Contents {
					if id := idPattern.FindString(kv.Value); id != "" {
						have[id] = true
						break
					}
				}
			}
			missing = 0
			for _, s := range recs {
				if !have[s.ID] {
					missing++
				}
			}
			if missing == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d of %d records not delivered to %s (the stand-in holds %d logs)", timeout, missing, len(recs), logstore, r.fake.LogCount(relaytest.Project, logstore))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestE2EFaultsErrorsAndResets: with a share of SLS's answers 500 or a
// reset connection (PutLogs, and the catalog's GetLogStore/ListShards),
// every acknowledged record is delivered after retries; duplicates are
// allowed, counted and logged.
func TestE2EFaultsErrorsAndResets(t *testing.T) {
	t.Parallel()
	// Small LogGroups: many PutLogs, so that the faults' shares bite.
	r := startTestRelay(t, func(c *relay.Config) { c.SLS.LogGroup.MaxLogs = 10 })
	const logstore = "test-logstore-2" // 4 shards
	faults := []slsfake.Fault{
		{Ops: []string{slsfake.OpPutLogs}, Share: 0.3, Status: 500},
		{Ops: []string{slsfake.OpPutLogs}, Share: 0.15, Reset: true},
		{Ops: []string{slsfake.OpPutLogs}, Share: 0.1, Status: 503},
		{Ops: []string{slsfake.OpGetLogStore, slsfake.OpListShards}, Share: 0.3, Status: 500},
		{Ops: []string{slsfake.OpGetLogStore, slsfake.OpListShards}, Share: 0.2, Reset: true},
	}
	for _, f := range faults {
		if _, err := r.fake.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}
	n := e2eLoadRecords
	recs := loadRecords(0, n, 4)
	cl := newKgo(t, append(r.kgoOpts(lPlain, relaytest.Password), kgo.ProducerBatchMaxBytes(16<<10))...)
	from := time.Now()
	// In slices, so that deliveries and faults interleave with produces.
	for i := 0; i < n; i += n / 10 {
		if err := produceKgo(t, cl, logstore, recs[i:min(i+n/10, n)]); err != nil {
			t.Fatalf("produce: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	setWindow(recs, from, time.Now())
	r.waitIDs(t, logstore, recs, e2eTimeout)
	var hits int64
	for _, f := range r.fake.Faults() {
		hits += f.Hits
	}
	r.fake.ClearFaults()
	st := r.Writers().Stats()
	dups := r.checkDelivered(t, logstore, recs, false)
	t.Logf("%d records, %d faults hit, %d writes retried, %d LogGroups delivered, %d duplicate logs", n, hits, st.Retries.Load(), st.LogGroups.Load(), dups)
	if st.Retries.Load() < 5 {
		t.Errorf("%d writes retried: the faults did not reach the writers", st.Retries.Load())
	}
	if d := st.DeadLetters.Load(); d != 0 {
		t.Errorf("%d entries went to dead letters: 500s and resets must be retried", d)
	}
}

// TestE2EOutage: SLS goes away (connections refused) while producers keep
// producing with acks=1; the relay keeps acknowledging from the WAL, and
// when SLS is back, every acknowledged record is delivered.
func TestE2EOutage(t *testing.T) {
	t.Parallel()
	// f: shardRefresh, if set, is short enough for the catalog's shard
	// list to be due for a refresh during the outage.
	f := func(name string, outage time.Duration, long bool, shardRefresh time.Duration) {
		t.Run(name, func(t *testing.T) {
			if long && os.Getenv("SLSRELAY_LONG_TESTS") != "1" {
				t.Skip("set SLSRELAY_LONG_TESTS=1 to run the long outage")
			}
			t.Parallel()
			r := startTestRelay(t, func(c *relay.Config) { c.SLS.ShardRefresh = shardRefresh })
			const logstore = "test-logstore-2" // 4 shards
			ids := &atomic.Int64{}
			var loads []*load
			for range 2 {
				cl := newKgo(t, append(r.kgoOpts(lPlain, relaytest.Password),
					kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())...)
				loads = append(loads, &load{cl: cl, topic: logstore, partitions: 4, batch: 10, pause: 20 * time.Millisecond, ids: ids})
			}
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			var wg sync.WaitGroup
			start := time.Now()
			for _, l := range loads {
				wg.Go(func() { l.run(ctx) })
			}
			time.Sleep(time.Second)
			r.waitLogs(t, relaytest.Project, logstore, 1, e2eTimeout) // delivering before the outage
			if err := r.fake.Outage(outage, slsfake.OutageRefuse); err != nil {
				t.Fatal(err)
			}
			outFrom := time.Now()
			time.Sleep(200 * time.Millisecond) // requests in flight settle
			before := r.fake.LogCount(relaytest.Project, logstore)
			time.Sleep(outage - 400*time.Millisecond)
			during := r.fake.LogCount(relaytest.Project, logstore)
			pending := r.WAL().Stats().PendingEntries
			outTo := time.Now()
			time.Sleep(time.Second + 200*time.Millisecond) // after the outage, still producing
			stop()
			wg.Wait()
			var acked []sent
			ackedDuring := 0
			var slowest time.Duration
			for _, l := range loads {
				if len(l.errs) > 0 {
					t.Errorf("a producer failed: %v", l.errs[0])
				}
				acked = append(acked, l.acked...)
				n, slow := l.ackedBetween(outFrom.Add(200*time.Millisecond), outTo)
				ackedDuring += n
				slowest = max(slowest, slow)
			}
			t.Logf("%d records acknowledged, %d batches during the %v outage (the slowest batch waited %v); %d entries pending in the WAL at its end",
				len(acked), ackedDuring, outage, slowest, pending)
			// acks=1 is the WAL's answer: an outage must not slow it.
			if slowest > 2*time.Second {
				t.Errorf("a batch waited %v for its acks: the outage slowed acks=1 down", slowest)
			}
			if during != before {
				t.Errorf("the stand-in took %d logs during the outage", during-before)
			}
			if ackedDuring == 0 {
				t.Errorf("no batch was acknowledged during the outage: acks=1 must be answered from the WAL")
			}
			if pending == 0 {
				t.Errorf("nothing was pending in the WAL during the outage")
			}
			setWindow(acked, start, time.Now())
			r.waitIDs(t, logstore, acked, e2eTimeout+outage)
			if dups := r.checkDelivered(t, logstore, acked, false); dups > 0 {
				// Where they come from: records the WAL took twice (a
				// producer's retry) or a LogGroup SLS took twice (a write
				// whose answer was lost).
				t.Logf("the WAL took %d records for %d acknowledged; the writers delivered %d logs in %d LogGroups and retried %d writes",
					r.walRecords(logstore), len(acked), r.Writers().Stats().Logs.Load(), r.Writers().Stats().LogGroups.Load(), r.Writers().Stats().Retries.Load())
			}
			if d := r.Writers().Stats().DeadLetters.Load(); d != 0 {
				t.Errorf("%d entries went to dead letters during an outage", d)
			}
		})
	}
	f("5s", 5*time.Second, false, 0)
	// The shard list (cached shard_refresh) expires while SLS is away:
	// the catalog keeps serving the list it has.
	f("5s/shard-list-expires", 5*time.Second, false, time.Second)
	// The default shard_refresh (60 s) expires during this one too.
	f("60s", 60*time.Second, true, 0)
}

// TestE2EDeletedLogstore: records the relay accepted for a logstore that
// is deleted before they are delivered become dead letters (SLS answers
// LogStoreNotExist, which no retry fixes); once the logstore is
// re-created, replaying them delivers them.
func TestE2EDeletedLogstore(t *testing.T) {
	t.Parallel()
	const logstore = "e2e-01"
	// f: shardRefresh is the catalog's; hold keeps the second lot of
	// records in the WAL (PutLogs answered 503) until after the deletion
	// and, if wait is set, until the shard list is due for a refresh
	// (the writer then learns of the deletion from ListShards).
	f := func(name string, shardRefresh time.Duration, hold bool, wait time.Duration) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startTestRelay(t, func(c *relay.Config) { c.SLS.ShardRefresh = shardRefresh })
			cl := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
			first := loadRecords(0, 10, 2)
			if err := produceKgo(t, cl, logstore, first); err != nil {
				t.Fatalf("produce: %v", err)
			}
			r.waitIDs(t, logstore, first, e2eTimeout)

			holdID := 0
			if hold {
				var err error
				holdID, err = r.fake.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Logstore: logstore, Status: 503})
				if err != nil {
					t.Fatal(err)
				}
			}
			second := loadRecords(10, 20, 2)
			if hold {
				// Accepted while the logstore exists, delivered after.
				if err := produceKgo(t, cl, logstore, second); err != nil {
					t.Fatalf("produce: %v", err)
				}
			}
			if err := r.fake.DeleteLogstore(relaytest.Project, logstore); err != nil {
				t.Fatal(err)
			}
			if !hold {
				// Accepted after the deletion: the catalog still has the
				// key and the shards cached.
				if err := produceKgo(t, cl, logstore, second); err != nil {
					t.Fatalf("produce after the deletion (the catalog's cache should accept it): %v", err)
				}
			}
			time.Sleep(wait)
			if shardRefresh > 0 && shardRefresh < wait {
				// The catalog has asked SLS again: shippers learn that the
				// logstore is gone.
				if code, _ := metadataPartitions(t, cl, logstore); code != kerr.UnknownTopicOrPartition.Code {
					t.Errorf("Metadata for the deleted logstore: error %d, want UNKNOWN_TOPIC_OR_PARTITION", code)
				}
			}
			if hold {
				r.fake.RemoveFault(holdID)
			}
			var dead int
			waitFor(t, 10*time.Second, "the records of the deleted logstore in dead letters", func() bool {
				dead = 0
				for _, d := range r.deadLetters(t) {
					dead += int(d.Entry.Records)
				}
				return dead >= len(second)
			})
			letters := r.deadLetters(t)
			for _, d := range letters {
				if d.Stream.Logstore != logstore || d.Stream.Project != relaytest.Project {
					t.Errorf("dead letter %d is of stream %+v", d.ID, d.Stream)
				}
				if !strings.Contains(d.Reason, "LogStoreNotExist") {
					t.Errorf("dead letter %d: reason %q does not name LogStoreNotExist", d.ID, d.Reason)
				}
			}
			if dead != len(second) {
				t.Errorf("%d records in dead letters, want %d", dead, len(second))
			}
			// The writers count a dead letter once the WAL has it.
			waitFor(t, 5*time.Second, fmt.Sprintf("Stats().DeadLetters to count the WAL's %d", len(letters)), func() bool {
				return r.Writers().Stats().DeadLetters.Load() == int64(len(letters))
			})

			if err := r.fake.CreateLogstore(relaytest.Project, slsfake.LogstoreConfig{Name: logstore, ShardCount: 2}); err != nil {
				t.Fatal(err)
			}
			for _, d := range letters {
				if _, err := r.WAL().Replay(d.ID); err != nil {
					t.Fatalf("replay %d: %v", d.ID, err)
				}
			}
			all := append(first, second...)
			setWindow(all, time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
			r.waitIDs(t, logstore, all, e2eTimeout)
			r.checkDelivered(t, logstore, all, true)
			if n := r.WAL().DeadLetterCount(); n != 0 {
				t.Errorf("%d dead letters left after replaying them all", n)
			}
		})
	}
	f("accepted-after-delete", 0, false, 0)
	f("held-then-deleted", 0, true, 0)
	// The writer's cached shard list expires while the logstore is gone:
	// ListShards answers LogStoreNotExist before any PutLogs does.
	f("held-then-deleted/shard-list-refreshed", 200*time.Millisecond, true, 500*time.Millisecond)
}

// TestE2EShipperErrors: a wrong key gets TOPIC_AUTHORIZATION_FAILED and
// nothing reaches the WAL; a missing logstore or project gets
// UNKNOWN_TOPIC_OR_PARTITION.
func TestE2EShipperErrors(t *testing.T) {
	t.Parallel()
	r := startTestRelay(t)
	f := func(t *testing.T, name string, l listener, user, password, logstore string, want *kerr.Error) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cl := newKgo(t, append(r.kgoOptsAs(l, user, password), kgo.UnknownTopicRetries(0), kgo.RecordRetries(2))...)
			if code, _ := metadataPartitions(t, cl, logstore); code != want.Code {
				t.Errorf("Metadata: error %d (%v), want %d (%v)", code, kerr.ErrorForCode(code), want.Code, want)
			}
			err := produceKgo(t, cl, logstore, loadRecords(0, 3, 2))
			if !isKerr(err, want) {
				t.Errorf("kgo produce: %v, want %v", err, want)
			}
			// sarama at 0.10.2 (Produce v2, SaslHandshake v0).
			cfg := r.saramaConfig(l, sarama.V0_10_2_0, password)
			cfg.Net.SASL.User = user
			cfg.Metadata.Retry.Max = 0
			cfg.Producer.Retry.Max = 0
			err = produceSarama(t, r.addr(l), cfg, logstore, loadRecords(3, 3, 2))
			if !errors.Is(err, sarama.KError(want.Code)) {
				t.Errorf("sarama produce: %v, want %v", err, want)
			}
			if n := r.walRecords(logstore); n != 0 {
				t.Errorf("the WAL took %d records for %s", n, logstore)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		f(t, "wrong-key", lSASLSSL, relaytest.Project, relaytest.AKID+"#wrong", "e2e-01", kerr.TopicAuthorizationFailed)
		f(t, "unknown-key", lSASLSSL, relaytest.Project, "no-such-akid#"+relaytest.Secret, "e2e-02", kerr.TopicAuthorizationFailed)
		f(t, "missing-logstore/PLAINTEXT", lPlain, relaytest.Project, relaytest.Password, "no-such-logstore", kerr.UnknownTopicOrPartition)
		f(t, "missing-logstore/SASL_SSL", lSASLSSL, relaytest.Project, relaytest.Password, "no-such-logstore-2", kerr.UnknownTopicOrPartition)
		f(t, "missing-project", lSASLSSL, "no-such-project", relaytest.Password, "e2e-03", kerr.UnknownTopicOrPartition)
	})
	// The right key, on the logstore a wrong one was just refused for,
	// works: refusals are cached per key.
	cl := newKgo(t, r.kgoOpts(lSASLSSL, relaytest.Password)...)
	recs := loadRecords(0, 4, 2)
	if err := produceKgo(t, cl, "e2e-01", recs); err != nil {
		t.Fatalf("the right key after a wrong one: %v", err)
	}
	r.waitIDs(t, "e2e-01", recs, e2eTimeout)
}

// TestE2ERestartWithBacklog: records acknowledged but not yet delivered
// when the relay stops are delivered by the next relay on the same
// data_dir.
func TestE2ERestartWithBacklog(t *testing.T) {
	t.Parallel()
	const logstore = "test-logstore-2"
	r := startTestRelay(t)
	cl := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
	// The key's first batch proves it may write (delivered before its
	// answer); then SLS fails.
	if err := produceKgo(t, cl, logstore, loadRecords(100000, 1, 1)); err != nil {
		t.Fatalf("produce the proving batch: %v", err)
	}
	r.waitLogs(t, relaytest.Project, logstore, 1, 10*time.Second)
	if _, err := r.fake.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Status: 503}); err != nil {
		t.Fatal(err)
	}
	recs := loadRecords(0, e2eRecordsPerCase*4, 4)
	from := time.Now()
	if err := produceKgo(t, cl, logstore, recs); err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitFor(t, 5*time.Second, "a failed write", func() bool { return r.Writers().Stats().Retries.Load() > 0 })
	cl.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := r.fake.LogCount(relaytest.Project, logstore); n != 1 {
		t.Fatalf("the stand-in took %d logs through a 503 fault", n-1)
	}
	r2 := startTestRelayConfig(t, r.cfg)
	setWindow(recs, from, time.Now())
	r2.waitIDs(t, logstore, recs, e2eTimeout)
	time.Sleep(100 * time.Millisecond)
	r2.checkDelivered(t, logstore, recs, true)
}

// TestE2ERestartDuringOutage: a relay restarted while SLS is unreachable
// still takes records for a key and logstore SLS accepted before the
// restart (the catalog's state file), and delivers them once SLS is back.
// The first request may wait for the catalog to give up on SLS; the next
// ones must not wait again.
func TestE2ERestartDuringOutage(t *testing.T) {
	t.Parallel()
	const logstore = "e2e-01"
	r := startTestRelay(t)
	cl := newKgo(t, r.kgoOpts(lSASLSSL, relaytest.Password)...)
	first := loadRecords(0, 10, 2)
	if err := produceKgo(t, cl, logstore, first); err != nil {
		t.Fatalf("produce: %v", err)
	}
	r.waitIDs(t, logstore, first, e2eTimeout)
	cl.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r2 := startTestRelayConfig(t, r.cfg)
	const outage = 15 * time.Second
	if err := r2.fake.Outage(outage, slsfake.OutageRefuse); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(outage)
	// Java clients and librdkafka wait 30 s for an answer.
	cl2 := newKgo(t, append(r2.kgoOpts(lSASLSSL, relaytest.Password), kgo.RequestTimeoutOverhead(30*time.Second), kgo.RetryTimeout(60*time.Second))...)
	var sentAll []sent
	for i := range 4 {
		recs := loadRecords(100+10*i, 10, 2)
		t0 := time.Now()
		if err := produceKgo(t, cl2, logstore, recs); err != nil {
			t.Fatalf("produce %d during the outage, after a restart: %v", i, err)
		}
		took, now := time.Since(t0), time.Now()
		t.Logf("batch %d acknowledged after %v", i, took.Round(time.Millisecond))
		sentAll = append(sentAll, recs...)
		if now.After(end) {
			t.Errorf("batch %d was acknowledged only after the %v outage ended", i, outage)
			break
		}
		if i > 0 && took > 2*time.Second {
			t.Errorf("batch %d waited %v for its acks: the catalog asked the unreachable SLS again", i, took.Round(time.Millisecond))
		}
	}
	setWindow(sentAll, time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	r2.waitIDs(t, logstore, sentAll, e2eTimeout+outage)
	r2.checkDelivered(t, logstore, sentAll, true)
}

// TestE2EShardSplit: a shard splits while producers write; nothing is
// lost, nothing lands on the now-readonly shard, and once the catalog
// refreshes, Metadata reports a partition per readwrite shard and the new
// partition takes records too.
func TestE2EShardSplit(t *testing.T) {
	t.Parallel()
	const logstore = "e2e-01" // 2 shards
	r := startTestRelay(t, func(c *relay.Config) { c.SLS.ShardRefresh = 300 * time.Millisecond })
	ids := &atomic.Int64{}
	ld := &load{cl: newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...), topic: logstore, partitions: 2, batch: 10, pause: 10 * time.Millisecond, ids: ids}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() { ld.run(ctx) })
	time.Sleep(500 * time.Millisecond)
	shards, err := r.fake.SplitShard(relaytest.Project, logstore, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	splitAt := time.Now()
	t.Logf("split: %+v", shards)
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	if len(ld.errs) > 0 {
		t.Fatalf("producing during the split: %v", ld.errs[0])
	}

	cl := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
	waitFor(t, 10*time.Second, "Metadata to report 3 partitions", func() bool {
		code, n := metadataPartitions(t, cl, logstore)
		return code == 0 && n == 3
	})
	after := loadRecords(int(ids.Load()), 30, 3)
	cl2 := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
	if err := produceKgo(t, cl2, logstore, after); err != nil {
		t.Fatalf("produce to 3 partitions: %v", err)
	}
	all := append(ld.acked, after...)
	setWindow(all, start, time.Now())
	r.waitIDs(t, logstore, all, e2eTimeout)
	r.checkDelivered(t, logstore, all, true)
	perShard := map[int]int{}
	for _, l := range r.fake.Logs(relaytest.Project, logstore) {
		perShard[l.ShardID]++
		if l.ShardID == 0 && l.Received.After(splitAt.Add(100*time.Millisecond)) {
			t.Errorf("shard 0 (readonly since the split) took a log at %v", l.Received)
		}
	}
	t.Logf("%d records, logs per shard %v", len(all), perShard)
	if perShard[2] == 0 || perShard[3] == 0 {
		t.Errorf("the split's children took no logs: %v", perShard)
	}
}
