package engine

// Metadata: v0 to v13.
//
// Behaviour:
//   - The only broker is this node, at the advertised address of the
//     listener the request came in on; it leads every partition.
//   - Topic = Logstore; "name.json" reports Logstore "name"'s partitions.
//     Partitions are the Logstore's readwrite shards, as the catalog says.
//   - Topic errors come from the catalog: TOPIC_AUTHORIZATION_FAILED,
//     UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE while it cannot
//     answer. Topics are never created.
//   - All topics (null list; an empty list in v0) lists the Project's
//     Logstores; if the catalog cannot list them the answer holds none.
//   - v10+: topics have stable IDs (see topicIDs); a request by ID alone
//     for an ID this node never handed out is UNKNOWN_TOPIC_ID.

import (
	"context"
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
	node := s.srv.opts.NodeID
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
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		n, err := s.srv.catalog.Partitions(ctx, s.principal.Project, s.principal.Credential, logstore)
		mt.ErrorCode = errorCode(err)
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
