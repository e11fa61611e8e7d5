package engine

// Metadata: v0 to v13.
//
// Behaviour:
//   - The only broker is BrokerID (default: NodeID), at the advertised
//     address of the listener the request came in on; it leads every
//     partition and is the controller.
//   - Topic = Logstore; "name.json" reports Logstore "name"'s partitions.
//     Partitions are the Logstore's readwrite shards, as the catalog says.
//   - Topic errors come from the catalog: TOPIC_AUTHORIZATION_FAILED,
//     UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE while it cannot
//     answer. Topics are never created.
//   - All topics (null list; an empty list in v0) lists the Project's
//     Logstores; if the catalog cannot list them the answer holds none.
//   - v10+: topics have stable IDs (see topicIDs); a request by ID alone
//     for an ID this node never handed out is UNKNOWN_TOPIC_ID.
//   - During a Drain the answer is the connection's last (see drain.go).
//
// A fleet behind one address. Several nodes, each with its own WAL, sit
// behind one address shippers are configured with: a TCP load balancer
// (a Kubernetes Service, HAProxy) or a DNS name holding every node's
// address. Every node advertises that shared address and names the same
// BrokerID: to a client the fleet is one broker that never moves, and
// every node is that broker. There is no membership protocol; each node
// knows only itself. Why this and not the alternatives:
//
//   - Each node naming itself at its own address (WarpStream's agents do,
//     and this relay's README did for Kubernetes) sends the client to one
//     node's own name. When that node is lost the client holds on to the
//     name it learned until it refreshes metadata through some other
//     broker it knows: sarama (the Beats' fork) refreshes every
//     metadata.refresh_frequency, 10 min in Filebeat, and asks the
//     brokers it learned before its seed (LeastLoadedBroker in sarama's
//     client.go), dead ones included, so Filebeat is known to stall;
//     librdkafka keeps reconnecting to the learned broker
//     with reconnect.backoff up to 10 s and does refresh, but only via
//     brokers it can reach. It also needs a name per node reachable from
//     every shipper (README: one Service and DNS name per pod outside the
//     cluster).
//   - Partitions spread over the live nodes (each partition led by one
//     node, as Kafka does) needs every node to know which nodes are live
//     and to agree on it: a membership protocol, or the headless Service's
//     DNS, which lags a lost pod by the readiness probe's period and still
//     names each node by its own address, with the problem above. It buys
//     nothing here: any node can store any partition (each has its own
//     WAL and writes to SLS itself; partition order across nodes is not
//     kept by SLS shards either way).
//   - One broker at the shared address: when the node behind a
//     connection is lost, the connection breaks and the client
//     reconnects to the same address, which the balancer (or the next DNS
//     address) sends to a live node. Every client already does this for a
//     broker that restarts: franz-go re-dials the broker and retries the
//     request; sarama closes the broker, refreshes metadata through its
//     seed (the same address) and retries on the re-opened broker;
//     librdkafka reconnects the broker with backoff and retries; Java
//     does the same. The broker's id and address never change, so no
//     client moves partitions between brokers, keeps stale brokers or
//     waits for a metadata refresh to find a new leader. A draining node
//     answers Produce with NOT_LEADER_OR_FOLLOWER (retriable everywhere:
//     franz-go's kerr.IsRetriable, sarama's async producer retries it
//     after refreshing metadata, librdkafka and Java refresh and retry)
//     and closes the connection after that answer: the retry dials the
//     shared address anew and lands on another node, since the draining
//     node's readiness is false and the balancer took it out.
//   - What it costs: the certificate of a SASL_SSL listener must name the
//     shared address; an idempotent producer's batches are deduplicated
//     per node, so a batch stored by a node that was lost before its
//     answer went out and retried on another node is stored twice
//     (delivered at least once, never lost); records of one partition
//     may reach SLS out of order across nodes, as they may when shards
//     split.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(3, api{min: 0, max: 13, handle: (*session).handleMetadata})
}

// catalogTimeout bounds one catalog call; past it the client sees a
// retriable error rather than waiting.
const catalogTimeout = 10 * time.Second

func (s *session) handleMetadata(r *request) {
	req := r.kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	node := s.srv.opts.BrokerID
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = node, s.ln.advertised.host, s.ln.advertised.port
	resp.Brokers = append(resp.Brokers, b)
	cluster := clusterID
	resp.ClusterID = &cluster
	resp.ControllerID = node

	ctx, cancel := context.WithTimeout(context.Background(), catalogTimeout)
	defer cancel()

	var names []*string
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		all, err := s.srv.catalog.Topics(ctx, s.principal.Project, s.principal.Credential)
		if err != nil {
			s.srv.log.Debug("cannot list topics", "project", s.principal.Project, "err", err)
		}
		for i := range all {
			if s.principal.mayWrite(all[i]) {
				names = append(names, &all[i])
			}
		}
	} else {
		for _, t := range req.Topics {
			if t.Topic == nil || *t.Topic == "" {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = t.TopicID
				if ref, ok := s.srv.topicIDs.lookup(t.TopicID); ok && ref.project == s.principal.Project {
					name := ref.topic
					names = append(names, &name)
					continue
				}
				mt.ErrorCode = kerr.UnknownTopicID.Code
				s.refuse(RefusalUnknownTopic, "refused", "Metadata for a topic ID this node did not hand out")
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			names = append(names, t.Topic)
		}
	}
	for _, name := range names {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = name
		logstore, _ := splitTopic(*name)
		if !s.principal.mayWrite(logstore) { // a relay user's rights, before the catalog
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			s.refuse(RefusalAuthorization, "refused", fmt.Sprintf("Metadata for topic %q: relay user %q may not write it", logName(*name), s.principal.User))
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		n, err := s.srv.catalog.Partitions(ctx, s.principal.Project, s.principal.Credential, logstore)
		mt.ErrorCode = errorCode(err)
		if reason := refusalOf(mt.ErrorCode, err); reason != "" {
			s.refuse(reason, "refused", withCause(fmt.Sprintf("Metadata for topic %q: %s", logName(*name), describeCode(mt.ErrorCode)), err))
		}
		mt.TopicID = s.srv.topicIDs.id(s.principal.Project, *name, err == nil)
		for i := int32(0); err == nil && i < n; i++ {
			p := kmsg.NewMetadataResponseTopicPartition()
			p.Partition, p.Leader, p.LeaderEpoch = i, node, 0
			p.Replicas, p.ISR = []int32{node}, []int32{node}
			mt.Partitions = append(mt.Partitions, p)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	s.respond(r.slot, r.hdr.corrID, resp)
}

// clusterID is reported in Metadata; every relay node reports the same.
const clusterID = "slsrelay"
