package kafkatest

// The shippers of the fleet tests, sending through the one address:
// franz-go, sarama as Filebeat runs it, librdkafka through kcat, and
// kafka-python when asked for.

import (
	"context"
	"log"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FleetStuck bounds every wait on a client library, so that one that
// hangs fails the test with a message instead of hanging it.
const FleetStuck = 30 * time.Second

// FleetShipperOptions say where the shippers send and how often.
type FleetShipperOptions struct {
	Front    string        // the shared address
	Interval time.Duration // between two records of one shipper
	KcatPath string
	// Topic is each shipper's topic, by its client's name ("franz-go",
	// "sarama", "kcat").
	Topic func(name string) string
	// FranzOpts and KcatArgs are added to the clients' own.
	FranzOpts []kgo.Opt
	KcatArgs  []string
	// KafkaPython adds kafka-python as a fourth shipper, Python
	// (kafkapython_shipper.go).
	KafkaPython bool
}

// FleetShippers are the running shippers. Franz, Beats and Kcat hold what
// each sent and had acknowledged.
type FleetShippers struct {
	Franz, Beats, Kcat *FleetClient
	Python             *FleetClient // nil unless FleetShipperOptions.KafkaPython

	stop    chan struct{}
	running sync.WaitGroup // the Run loops

	franz     *kgo.Client
	franzSend func(int)

	sarama      sarama.AsyncProducer
	saramaSend  func(int)
	saramaDone  sync.WaitGroup // its Successes and Errors readers
	saramaStuck atomic.Int32   // sends that waited FleetStuck

	kcatLines  chan []byte
	kcatOut    *LockedBuffer
	kcatExited chan error

	py     *PyProducer
	pySend func(int)
}

// StartFleetShippers starts the three shippers sending through o.Front:
// franz-go with its defaults (idempotent, acks all, retries until
// delivered); sarama as Filebeat runs it (BeatsSaramaConfig), what it gives
// up on sent again as libbeat's pipeline does; librdkafka with its defaults
// (acks all, message.timeout.ms 300 s) in one long-lived kcat fed on stdin.
func StartFleetShippers(t testing.TB, o FleetShipperOptions) *FleetShippers {
	t.Helper()
	s := &FleetShippers{Franz: NewFleetClient("franz-go"), Beats: NewFleetClient("sarama"), Kcat: NewFleetClient("kcat"), stop: make(chan struct{})}
	run := func(c *FleetClient, send func(int)) {
		s.running.Add(1)
		go func() {
			defer s.running.Done()
			c.Run(o.Interval, s.stop, send)
		}()
	}

	opts := append([]kgo.Opt{kgo.SeedBrokers(o.Front), kgo.DefaultProduceTopic(o.Topic(s.Franz.Name)), kgo.ClientID("franz-go-fleet")}, o.FranzOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	s.franz = cl
	s.franzSend = func(seq int) {
		cl.Produce(context.Background(), &kgo.Record{Value: s.Franz.Value(seq)}, func(_ *kgo.Record, err error) {
			if err != nil {
				s.Franz.Failed(seq, err)
				return
			}
			s.Franz.Ack(seq)
		})
	}
	run(s.Franz, s.franzSend)

	captureSaramaLog(t)
	sp, err := sarama.NewAsyncProducer([]string{o.Front}, BeatsSaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	s.sarama = sp
	s.saramaDone.Add(2)
	go func() {
		defer s.saramaDone.Done()
		for m := range sp.Successes() {
			s.Beats.Ack(m.Metadata.(int))
		}
	}()
	go func() {
		defer s.saramaDone.Done()
		for e := range sp.Errors() {
			s.Beats.Failed(e.Msg.Metadata.(int), e.Err)
		}
	}()
	beatsTopic := o.Topic(s.Beats.Name)
	s.saramaSend = func(seq int) {
		select {
		case sp.Input() <- &sarama.ProducerMessage{Topic: beatsTopic, Value: sarama.ByteEncoder(s.Beats.Value(seq)), Metadata: seq}:
		case <-time.After(FleetStuck):
			s.saramaStuck.Add(1) // reported by Finish
		}
	}
	run(s.Beats, s.saramaSend)

	// -E: kcat itself, not librdkafka, would end when the one broker's
	// connection is down for a moment; a shipper keeps going.
	args := append([]string{"-P", "-E", "-b", o.Front, "-t", o.Topic(s.Kcat.Name), "-X", "client.id=kcat-fleet"}, o.KcatArgs...)
	kcat := exec.Command(o.KcatPath, args...)
	s.kcatOut = &LockedBuffer{}
	kcat.Stdout, kcat.Stderr = s.kcatOut, s.kcatOut
	kcatIn, err := kcat.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := kcat.Start(); err != nil {
		t.Fatal(err)
	}
	s.kcatExited = make(chan error, 1)
	go func() { s.kcatExited <- kcat.Wait() }()
	t.Cleanup(func() { _ = kcat.Process.Kill() })
	// Lines go through a goroutine, so a kcat that stops reading its input
	// fails the test (it never acknowledges) instead of hanging it.
	s.kcatLines = make(chan []byte, 1<<16)
	go func() {
		for line := range s.kcatLines {
			_, _ = kcatIn.Write(line)
		}
		kcatIn.Close()
	}()
	run(s.Kcat, func(seq int) { s.kcatLines <- append(s.Kcat.Value(seq), '\n') })

	if o.KafkaPython {
		s.Python = NewFleetClient("kafka-python")
		s.pySend = s.startKafkaPython(t, o)
		run(s.Python, s.pySend)
	}
	return s
}

// Clients are the shippers' accounts.
func (s *FleetShippers) Clients() []*FleetClient {
	if s.Python != nil {
		return []*FleetClient{s.Franz, s.Beats, s.Kcat, s.Python}
	}
	return []*FleetClient{s.Franz, s.Beats, s.Kcat}
}

// Finish stops sending new records and waits until every record sent is
// acknowledged (sending again what a library gave up on) or timeout
// passes, failing the test for what is not. kcat acknowledges nothing per
// record: once it exited having delivered everything, its records count
// as acknowledged with waits not known (AckAllSent).
func (s *FleetShippers) Finish(t testing.TB, timeout time.Duration) {
	t.Helper()
	close(s.stop)
	if !waitWithin(&s.running, FleetStuck) {
		t.Fatalf("a shipper is stuck sending for %v", FleetStuck)
	}
	// kcat's input ends now, not after the other clients: kcat -P holds
	// the lines it read until its input buffer fills or ends, so the last
	// records would otherwise wait for every client before it and read as
	// kcat's own waits (79 s once, behind a stalled sarama).
	close(s.kcatLines)
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := s.franz.Flush(ctx); err != nil {
		t.Errorf("franz-go: flush: %v", err)
	}
	if !s.Franz.ResendUntil(deadline, s.franzSend) {
		t.Errorf("franz-go: %d records never acknowledged", s.Franz.Outstanding())
	}
	if !s.Beats.ResendUntil(deadline, s.saramaSend) {
		t.Errorf("sarama: %d records never acknowledged", s.Beats.Outstanding())
	}
	if n := s.saramaStuck.Load(); n > 0 {
		t.Errorf("sarama took no record for %v, %d times", FleetStuck, n)
	}
	s.sarama.AsyncClose()
	if !waitWithin(&s.saramaDone, FleetStuck) {
		t.Errorf("sarama did not close in %v", FleetStuck)
	}
	if s.Python != nil {
		s.finishKafkaPython(t, deadline)
	}
	// kcat gets at least kcatFinish of its own: a client before it that
	// used up the deadline must not make kcat's records look lost.
	select {
	case err := <-s.kcatExited:
		if out := s.kcatOut.String(); err != nil || strings.Contains(out, "Delivery failed") {
			t.Errorf("kcat: %v; it reports:\n%s", err, out)
			return
		}
	case <-time.After(max(time.Until(deadline), kcatFinish)):
		// Nothing of kcat's counts as acknowledged: what it still held
		// would otherwise read as acknowledged and not stored.
		t.Errorf("kcat did not deliver everything in %v; it reports:\n%s", timeout, s.kcatOut.String())
		return
	}
	s.Kcat.AckAllSent()
}

// kcatFinish is the least time kcat is given to deliver what it holds.
const kcatFinish = 15 * time.Second

// waitWithin waits for wg at most d and reports whether it is done.
func waitWithin(wg *sync.WaitGroup, d time.Duration) bool {
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

// captureSaramaLog sends sarama's log (its package-level Logger: the
// producer's retries, broker connections, metadata refreshes) to a buffer
// shown if the test fails, and to LogWriter. sarama.Logger is set once per
// process, to a writer that follows the current test: sarama's goroutines
// read it without a lock.
func captureSaramaLog(t testing.TB) {
	buf := &LockedBuffer{}
	saramaLogOnce.Do(func() {
		sarama.Logger = log.New(saramaLogTo, "[sarama] ", log.Ltime|log.Lmicroseconds)
	})
	saramaLogTo.buf.Store(buf)
	t.Cleanup(func() {
		saramaLogTo.buf.CompareAndSwap(buf, nil)
		if t.Failed() {
			t.Logf("sarama's log:\n%s", buf.Tail(256<<10))
		}
	})
}

var (
	saramaLogOnce sync.Once
	saramaLogTo   = &saramaLogWriter{}
)

// saramaLogWriter writes to LogWriter and to the buffer of the test that
// captures sarama's log, if any. Safe for concurrent use.
type saramaLogWriter struct{ buf atomic.Pointer[LockedBuffer] }

func (w *saramaLogWriter) Write(p []byte) (int, error) {
	if b := w.buf.Load(); b != nil {
		_, _ = b.Write(p)
	}
	return LogWriter{}.Write(p)
}
