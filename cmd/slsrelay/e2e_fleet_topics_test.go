package main

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// A fleet in which franz-go (latest protocol, nothing pinned) learns its
// topics from node A's Metadata and produces to node B, which never saw
// the Logstore: every record is stored by B and reaches SLS. While the
// relay offered Produce v13 (topics by ID), B could not map the ID A
// handed out back to a Logstore (SLS's catalog cannot list them),
// answered UNKNOWN_TOPIC_ID, and franz-go gave the records up after 4
// tries.
func TestE2EFleetProduceToNodeThatNeverSawTheTopic(t *testing.T) {
	const logstore = "e2e-33"
	proxy := kafkatest.StartSplitProxy(t)
	node := func(id int32) *testRelay {
		return startTestRelay(t, func(c *relay.Config) {
			c.NodeID, c.BrokerID = id, 1
			for i := range c.Listeners {
				if c.Listeners[i].Name == "PLAINTEXT" {
					c.Listeners[i].Advertised = proxy.Addr
				}
			}
		})
	}
	a, b := node(1), node(2)
	proxy.Route(b.Addrs.Listeners["PLAINTEXT"], a.Addrs.Listeners["PLAINTEXT"])

	cl := newKgo(t, append(kafkatest.Listener{Addr: proxy.Addr}.KgoOpts(), kgo.ClientID("fleet-topics"))...)
	var recs []sent
	for i := range 20 {
		id := e2eID(i)
		recs = append(recs, sent{ID: id, Partition: int32(i % 2), Value: []byte(fmt.Sprintf("%s produced to a node that never saw the topic", id))})
	}
	if err := produceKgo(t, cl, logstore, recs); err != nil {
		t.Fatalf("produce through A's Metadata to B: %v", err)
	}
	b.waitIDs(t, logstore, recs, e2eTimeout)
	if n := a.fake.LogCount(relaytest.Project, logstore); n != 0 {
		t.Errorf("node A, which only answered Metadata, delivered %d logs", n)
	}
}
