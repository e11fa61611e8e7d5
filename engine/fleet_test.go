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
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

func TestFleetBehindOneAddress(t *testing.T) {
	plan := kafkatest.FleetPlanFromEnv()
	kcatPath := clKcat(t)
	front := freeLoopbackAddr(t)
	var nodes []*fleetNode
	for id := int32(1); id <= 3; id++ {
		n := newFleetNode(t, id, front, plan.Linger)
		n.start()
		nodes = append(nodes, n)
	}
	startHAProxy(t, front, nodes)

	shippers := kafkatest.StartFleetShippers(t, kafkatest.FleetShipperOptions{
		Front: front, Interval: plan.Interval, KcatPath: kcatPath,
		Topic: func(string) string { return testTopic4 },
	})

	start := time.Now()
	event := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(start).Seconds()}, args...)...)
	}
	refusedBefore := drainRefused.Get()
	time.Sleep(plan.Warmup)
	for _, n := range nodes {
		event("node %d killed", n.id)
		n.kill()
		time.Sleep(plan.Down)
		n.start()
		event("node %d restarted on %s", n.id, n.bind)
		time.Sleep(plan.Settle)
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
	time.AfterFunc(plan.Linger-100*time.Millisecond, func() { leftAtEnd <- drained.connections() })
	if err := drained.drain(); err != nil {
		t.Errorf("drain of node %d: %v", drained.id, err)
	}
	event("node %d drained and stopped; %d Produce requests were answered NOT_LEADER_OR_FOLLOWER", drained.id, drainRefused.Get()-refusedBefore)
	if left := <-leftAtEnd; left > 0 {
		t.Errorf("node %d still had %d connections 100 ms before its drain stopped listening", drained.id, left)
	}
	time.Sleep(plan.Down)
	drained.start()
	event("node %d restarted", drained.id)
	time.Sleep(plan.Settle)
	event("stopping the shippers; waiting for every record to be acknowledged")
	shippers.Finish(t, 60*time.Second)

	stored := storedIn(t, nodes)
	// kcat's waits are until the last node to store a copy received it
	// (the ack follows the store at once).
	for _, c := range shippers.Clients() {
		t.Log(c.Check(t, func(seq int) []time.Time { return stored.times(c.Name, seq) }, kafkatest.Latest))
		c.LogWorst(t, start, 3)
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
