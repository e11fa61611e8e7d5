package engine

// A fleet behind one address (issue 14). Three relays, each with its own
// appender (its WAL), advertise HAProxy's address and name the same broker
// (see 03_metadata.go). sarama with Filebeat's settings, librdkafka (kcat)
// and franz-go produce through that one address while each node in turn
// is killed and restarted on its port, then one is drained as on SIGTERM
// and restarted, as in a rolling update. Every acknowledged record must be
// in some node's appender; each client's worst wait for an ack is
// reported, and must stay within 15 s.
//
// The normal suite runs a short plan (about 15 s); SLSRELAY_LONG_TESTS=1
// runs the issue's: nodes down for 5 s, a 5 s drain linger.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fleetPlan is how long each phase of the fleet test lasts.
type fleetPlan struct {
	interval time.Duration // between two records of one client
	warmup   time.Duration // before the first kill
	down     time.Duration // a node stays down before its restart
	settle   time.Duration // after a restart, before the next event
	linger   time.Duration // Options.DrainLinger
}

var (
	fleetShort = fleetPlan{interval: 10 * time.Millisecond, warmup: time.Second, down: time.Second, settle: 1500 * time.Millisecond, linger: time.Second}
	fleetLong  = fleetPlan{interval: 5 * time.Millisecond, warmup: 3 * time.Second, down: 5 * time.Second, settle: 5 * time.Second, linger: 5 * time.Second}
)

// fleetStuck bounds every wait on a client library, so that one that hangs
// fails the test with a message instead of hanging it.
const fleetStuck = 30 * time.Second

// fleetMaxAckWait is the goal for a shipper's worst ack wait
// through a node's loss or drain.
const fleetMaxAckWait = 15 * time.Second

// fleetBeatsConfig is sarama configured as Filebeat's Kafka output
// configures it with its defaults (elastic/beats
// libbeat/outputs/kafka/config.go, defaultConfig and newSaramaConfig):
// timeout 30 s for dial, read and write, broker_timeout 10 s, metadata
// retries 3 with 250 ms backoff and a refresh every 10 min of the topics
// in use only, max_retries 3 (sarama's retries; libbeat sends again what
// sarama gives up on), channel_buffer_size 256, bulk_max_size 2048, gzip,
// version 1.0.0, client id "beats", acks 1 (the library's default), and
// the hash partitioner (random for records without a key).
func fleetBeatsConfig() *sarama.Config {
	k := sarama.NewConfig()
	k.Net.DialTimeout, k.Net.ReadTimeout, k.Net.WriteTimeout = 30*time.Second, 30*time.Second, 30*time.Second
	k.Producer.Timeout = 10 * time.Second
	k.Metadata.Retry.Max, k.Metadata.Retry.Backoff = 3, 250*time.Millisecond
	k.Metadata.RefreshFrequency, k.Metadata.Full = 10*time.Minute, false
	k.Producer.Retry.Max = 3
	k.ChannelBufferSize = 256
	k.Producer.Flush.MaxMessages = 2048
	k.Producer.Compression, k.Producer.CompressionLevel = sarama.CompressionGZIP, 4
	k.Producer.RequiredAcks = sarama.WaitForLocal
	k.Producer.Return.Successes, k.Producer.Return.Errors = true, true
	k.Producer.Partitioner = sarama.NewHashPartitioner
	k.Version = sarama.V1_0_0_0
	k.ClientID = "beats"
	return k
}

func TestFleetBehindOneAddress(t *testing.T) {
	plan := fleetShort
	if os.Getenv("SLSRELAY_LONG_TESTS") == "1" {
		plan = fleetLong
	}
	haproxyPath(t)
	kcatPath := clKcat(t)
	front := freeLoopbackAddr(t)
	var nodes []*fleetNode
	for id := int32(1); id <= 3; id++ {
		n := newFleetNode(t, id, front, plan.linger)
		n.start()
		nodes = append(nodes, n)
	}
	startHAProxy(t, front, nodes)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	run := func(c *fleetClient, send func(int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(plan.interval, stop, send)
		}()
	}

	// franz-go with its defaults: idempotent, acks all, retries until
	// delivered.
	franz := newFleetClient("franz-go")
	cl, err := kgo.NewClient(kgo.SeedBrokers(front), kgo.DefaultProduceTopic(testTopic4), kgo.ClientID("franz-go-fleet"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	franzSend := func(seq int) {
		cl.Produce(context.Background(), &kgo.Record{Value: franz.value(seq)}, func(_ *kgo.Record, err error) {
			if err != nil {
				franz.failed(seq)
				return
			}
			franz.ack(seq)
		})
	}
	run(franz, franzSend)

	// sarama as Filebeat runs it; what it gives up on is sent again, as
	// libbeat's pipeline does.
	beats := newFleetClient("sarama")
	sp, err := sarama.NewAsyncProducer([]string{front}, fleetBeatsConfig())
	if err != nil {
		t.Fatal(err)
	}
	var spDone sync.WaitGroup
	spDone.Add(2)
	go func() {
		defer spDone.Done()
		for m := range sp.Successes() {
			beats.ack(m.Metadata.(int))
		}
	}()
	go func() {
		defer spDone.Done()
		for e := range sp.Errors() {
			t.Logf("sarama gave up on #%d after its retries: %v (sent again)", e.Msg.Metadata.(int), e.Err)
			beats.failed(e.Msg.Metadata.(int))
		}
	}()
	var saramaStuck atomic.Int32
	beatsSend := func(seq int) {
		select {
		case sp.Input() <- &sarama.ProducerMessage{Topic: testTopic4, Value: sarama.ByteEncoder(beats.value(seq)), Metadata: seq}:
		case <-time.After(fleetStuck):
			saramaStuck.Add(1) // reported when the test ends
		}
	}
	run(beats, beatsSend)

	// librdkafka through kcat, with librdkafka's defaults (acks all,
	// message.timeout.ms 300 s): one long-lived producer fed on stdin.
	rdk := newFleetClient("kcat")
	// -E: kcat itself, not librdkafka, would end when the one broker's
	// connection is down for a moment; a shipper keeps going.
	kcat := exec.Command(kcatPath, "-P", "-E", "-b", front, "-t", testTopic4, "-X", "client.id=kcat-fleet")
	var kcatOut bytes.Buffer
	kcat.Stdout, kcat.Stderr = &kcatOut, &kcatOut
	kcatIn, err := kcat.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := kcat.Start(); err != nil {
		t.Fatal(err)
	}
	kcatExited := make(chan error, 1)
	go func() { kcatExited <- kcat.Wait() }()
	defer func() { _ = kcat.Process.Kill() }()
	// Lines go through a goroutine, so a kcat that stops reading its input
	// fails the test (it never acknowledges) instead of hanging it.
	kcatLines := make(chan []byte, 1<<16)
	go func() {
		for line := range kcatLines {
			_, _ = kcatIn.Write(line)
		}
		kcatIn.Close()
	}()
	run(rdk, func(seq int) { kcatLines <- append(rdk.value(seq), '\n') })

	start := time.Now()
	event := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(start).Seconds()}, args...)...)
	}
	refusedBefore := drainRefused.Get()
	time.Sleep(plan.warmup)
	for _, n := range nodes {
		event("node %d killed", n.id)
		n.kill()
		time.Sleep(plan.down)
		n.start()
		event("node %d restarted on %s", n.id, n.bind)
		time.Sleep(plan.settle)
	}
	// The drain is of the node most producers' connections are on.
	drained := nodes[0]
	for _, n := range nodes[1:] {
		if n.connections() > drained.connections() {
			drained = n
		}
	}
	event("open connections per node: %d, %d, %d", nodes[0].connections(), nodes[1].connections(), nodes[2].connections())
	event("node %d draining", drained.id)
	// Just before the drain stops listening, its producers must have
	// moved: every connection they had there closed.
	leftAtEnd := make(chan int, 1)
	time.AfterFunc(plan.linger-100*time.Millisecond, func() { leftAtEnd <- drained.connections() })
	if err := drained.drain(); err != nil {
		t.Errorf("drain of node %d: %v", drained.id, err)
	}
	event("node %d drained and stopped; %d Produce requests were answered NOT_LEADER_OR_FOLLOWER", drained.id, drainRefused.Get()-refusedBefore)
	if left := <-leftAtEnd; left > 0 {
		t.Errorf("node %d still had %d connections 100 ms before its drain stopped listening", drained.id, left)
	}
	time.Sleep(plan.down)
	drained.start()
	event("node %d restarted", drained.id)
	time.Sleep(plan.settle)
	close(stop)
	if !waitGroupWithin(&wg, fleetStuck) {
		t.Fatalf("a producer is stuck sending for %v", fleetStuck)
	}
	event("producers stopped; waiting for every record to be acknowledged")

	deadline := time.Now().Add(60 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := cl.Flush(ctx); err != nil {
		t.Errorf("franz-go: flush: %v", err)
	}
	if !franz.resendUntil(deadline, franzSend) {
		t.Errorf("franz-go: %d records never acknowledged", franz.outstanding())
	}
	if !beats.resendUntil(deadline, beatsSend) {
		t.Errorf("sarama: %d records never acknowledged", beats.outstanding())
	}
	if n := saramaStuck.Load(); n > 0 {
		t.Errorf("sarama took no record for %v, %d times", fleetStuck, n)
	}
	sp.AsyncClose()
	if !waitGroupWithin(&spDone, fleetStuck) {
		t.Errorf("sarama did not close in %v", fleetStuck)
	}
	close(kcatLines)
	select {
	case err := <-kcatExited:
		out := kcatOut.String()
		if err != nil || strings.Contains(out, "Delivery failed") {
			t.Errorf("kcat: %v; it reports:\n%s", err, out)
		}
	case <-time.After(time.Until(deadline)):
		t.Errorf("kcat did not deliver everything in 60 s; it reports:\n%s", kcatOut.String())
	}

	stored := storedIn(t, nodes)
	// kcat reports no delivery per record: a record counts as
	// acknowledged when kcat exited having delivered everything, and its
	// wait is until the last node to store a copy received it (the ack
	// follows the store at once).
	rdk.mu.Lock()
	for seq, sentAt := range rdk.sent {
		if copies := stored[rdk.name][seq]; len(copies) > 0 {
			rdk.acked[seq] = time.Unix(0, slicesMax(copies)).Sub(sentAt)
		} else {
			t.Errorf("kcat: record #%d, delivered by kcat's account, is in no node's appender", seq)
		}
	}
	rdk.mu.Unlock()
	for _, c := range []*fleetClient{franz, beats, rdk} {
		rep := c.check(t, stored)
		t.Log(rep)
		c.logWorst(t, start, 3)
		if rep.worst > fleetMaxAckWait {
			t.Errorf("%s waited %v for an acknowledgement, more than the %v a shipper may", c.name, rep.worst.Round(time.Millisecond), fleetMaxAckWait)
		}
		if rep.acked == 0 {
			t.Errorf("%s had nothing acknowledged", c.name)
		}
	}
	for _, n := range nodes {
		total := 0
		for _, k := range n.app.Streams() {
			for _, e := range n.app.Entries(k) {
				total += int(e.Records)
			}
		}
		t.Logf("node %d holds %d records", n.id, total)
	}
}

// waitGroupWithin waits for wg at most d and reports whether it is done.
func waitGroupWithin(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func slicesMax(s []int64) int64 {
	m := s[0]
	for _, v := range s[1:] {
		m = max(m, v)
	}
	return m
}
