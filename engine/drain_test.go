package engine

import (
	"bytes"
	"context"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDrainRaw follows one Drain request by request: a Produce read before
// it is answered as usual; during it Ready is false, an idle connection is
// closed, Metadata is answered and closes its connection, a Produce with
// acks is answered NOT_LEADER_OR_FOLLOWER (nothing stored) and closes its
// connection, an acks=0 Produce is stored; after DrainLinger the node no
// longer listens.
func TestDrainRaw(t *testing.T) {
	t.Parallel()
	const linger = 1500 * time.Millisecond
	r := startRelayAppender(t, func(m *MemoryAppender) Appender { return slowAppender{m, 700 * time.Millisecond} },
		func(o *Options) { o.DrainLinger, o.BrokerID, o.NodeID = linger, 7, 3 })
	count := func(value string) int {
		n := 0
		for p := int32(0); p < 2; p++ {
			for _, e := range r.entries(testTopic, p) {
				if bytes.Contains(e.Data, []byte(value)) {
					n++
				}
			}
		}
		return n
	}

	inFlight := kafkatest.DialT(t, r.plain, nil)
	before := kafkatest.ProduceRequest(7, -1, testTopic, map[int32][]byte{0: kafkatest.RecordBatch("before the drain")})
	corr := inFlight.Send(before)
	for deadline := time.Now().Add(5 * time.Second); count("before the drain") == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the Produce sent before the drain was not stored")
		}
	}
	idle := kafkatest.DialT(t, r.plain, nil)
	idle.RoundTrip(apiVersionsReq())

	start := time.Now()
	drained := make(chan error, 1)
	go func() { drained <- r.srv.Drain(context.Background()) }()
	for deadline := time.Now().Add(time.Second); r.srv.Ready(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Ready still true a second into the drain")
		}
	}

	resp := inFlight.Read(corr, before).(*kmsg.ProduceResponse)
	if errs := kafkatest.PartitionErrors(resp); errs[0] != 0 {
		t.Errorf("the Produce read before the drain: error %d, want stored and acknowledged", errs[0])
	}

	md := kafkatest.DialT(t, r.plain, nil)
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Version = 9
	topic := testTopic
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	mresp := md.RoundTrip(mreq).(*kmsg.MetadataResponse)
	if len(mresp.Brokers) != 1 || mresp.Brokers[0].NodeID != 7 || len(mresp.Topics) != 1 || mresp.Topics[0].Partitions[0].Leader != 7 {
		t.Errorf("Metadata during the drain: brokers %+v, want only BrokerID 7 leading every partition", mresp.Brokers)
	}
	md.ExpectClosed()

	refused := kafkatest.DialT(t, r.plain, nil)
	preq := kafkatest.ProduceRequest(9, -1, testTopic, map[int32][]byte{0: kafkatest.RecordBatch("refused"), 1: kafkatest.RecordBatch("refused")})
	presp := refused.RoundTrip(preq).(*kmsg.ProduceResponse)
	for p, code := range kafkatest.PartitionErrors(presp) {
		if code != kerr.NotLeaderForPartition.Code {
			t.Errorf("Produce during the drain, partition %d: error %d, want NOT_LEADER_OR_FOLLOWER (%d)", p, code, kerr.NotLeaderForPartition.Code)
		}
	}
	refused.ExpectClosed()

	acks0 := kafkatest.DialT(t, r.plain, nil)
	acks0.Send(kafkatest.ProduceRequest(9, 0, testTopic, map[int32][]byte{1: kafkatest.RecordBatch("acks=0 during the drain")}))
	// A broker never answers acks=0 (Kafka's protocol guide: "the server
	// will not send any response"); during a drain it closes instead.
	acks0.ExpectClosedSilent()

	idleClosed := make(chan struct{})
	go func() { idle.ExpectClosed(); close(idleClosed) }()
	select {
	case <-idleClosed:
	case <-time.After(linger):
		t.Error("the idle connection was still open when the linger ended")
	}

	select {
	case err := <-drained:
		if err != nil {
			t.Errorf("Drain: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return in 10 s")
	}
	took := time.Since(start)
	if took < linger {
		t.Errorf("Drain returned after %v, before its linger of %v", took, linger)
	}
	if c, err := net.DialTimeout("tcp", r.plain, time.Second); err == nil {
		c.Close()
		t.Error("the node still accepts connections after Drain returned")
	}
	if n := count("refused"); n != 0 {
		t.Errorf("%d batches refused with NOT_LEADER_OR_FOLLOWER were stored", n)
	}
	if n := count("acks=0 during the drain"); n != 1 {
		t.Errorf("the acks=0 Produce during the drain was stored %d times, want once", n)
	}
	t.Logf("Drain took %v (linger %v)", took.Round(time.Millisecond), linger)
}

// TestDrainSASLSSL: on the TLS listener too, a drain answers an
// authenticated client's Produce with NOT_LEADER_OR_FOLLOWER and closes
// the connection, and closes an idle authenticated connection.
func TestDrainSASLSSL(t *testing.T) {
	t.Parallel()
	r := startRelay(t, func(o *Options) { o.DrainLinger = 1500 * time.Millisecond })
	dial := func() *kafkatest.TConn {
		c := kafkatest.DialT(t, r.saslSSL, r.tls)
		if resp := c.SASLPlain(testProject, testAKID+"#"+testSecret); resp.ErrorCode != 0 {
			t.Fatalf("SASL: error %d", resp.ErrorCode)
		}
		return c
	}
	idle, busy := dial(), dial()
	drained := make(chan error, 1)
	go func() { drained <- r.srv.Drain(context.Background()) }()
	for deadline := time.Now().Add(time.Second); r.srv.Ready(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Ready still true a second into the drain")
		}
	}
	resp := busy.RoundTrip(kafkatest.ProduceRequest(7, 1, testTopic, map[int32][]byte{1: kafkatest.RecordBatch("over TLS during the drain")})).(*kmsg.ProduceResponse)
	if code := kafkatest.PartitionErrors(resp)[1]; code != kerr.NotLeaderForPartition.Code {
		t.Errorf("Produce over SASL_SSL during the drain: error %d, want NOT_LEADER_OR_FOLLOWER", code)
	}
	busy.ExpectClosed()
	silent := dial()
	silent.Send(kafkatest.ProduceRequest(7, 0, testTopic, map[int32][]byte{0: kafkatest.RecordBatch("acks=0 over TLS during the drain")}))
	silent.ExpectClosedSilent()
	start := time.Now()
	idle.ExpectClosed()
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("the idle TLS connection was closed only after %v", waited)
	}
	if err := <-drained; err != nil {
		t.Errorf("Drain: %v", err)
	}
	if n := len(r.entries(testTopic, 1)); n != 0 {
		t.Errorf("%d entries stored from a refused Produce", n)
	}
}
