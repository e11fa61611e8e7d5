package engine

// Topic IDs a node never handed out. Topic IDs are derived from project
// and topic (topics.go), the same on every node, but a node maps back only
// the IDs it reported in Metadata. In a fleet behind one address a client
// learns an ID from one node and sends Produce v13 (topics by ID) to
// another, or to a node that restarted since: before answering
// UNKNOWN_TOPIC_ID, the node lists the project's Logstores from the
// catalog and learns their IDs. (Without this, franz-go moved by a node's
// loss retried for 10 s: each retry waits for a metadata refresh, at most
// one per MetadataMinAge, 5 s, and the refresh may reach yet another node.)

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicIDRelearn is how often one project's topics may be listed to learn
// IDs, so that requests for made-up IDs cannot make a node ask the catalog
// for every request.
const topicIDRelearn = time.Second

// topicIDLearner remembers when each project's topics were last listed.
// Safe for concurrent use.
type topicIDLearner struct {
	mu   sync.Mutex // protects last
	last map[string]time.Time
}

// allow reports whether project's topics may be listed now, and if so
// notes that they are.
func (l *topicIDLearner) allow(project string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last[project]) < topicIDRelearn {
		return false
	}
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	l.last[project] = now
	return true
}

// learnTopicIDs makes the topic IDs a Produce v13+ or a Metadata request
// names known, if the principal's project has those topics.
func (s *session) learnTopicIDs(kreq kmsg.Request) {
	unknown := false
	known := func(id [16]byte) {
		if _, ok := s.srv.topicIDs.lookup(id); !ok {
			unknown = true
		}
	}
	switch req := kreq.(type) {
	case *kmsg.ProduceRequest:
		if req.Version < 13 {
			return
		}
		for _, t := range req.Topics {
			known(t.TopicID)
		}
	case *kmsg.MetadataRequest:
		for _, t := range req.Topics {
			if t.Topic == nil || *t.Topic == "" {
				known(t.TopicID)
			}
		}
	}
	if !unknown || !s.srv.topicIDLearner.allow(s.principal.Project, time.Now()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), catalogTimeout)
	defer cancel()
	names, err := s.srv.catalog.Topics(ctx, s.principal.Project, s.principal.Credential)
	if err != nil {
		s.srv.log.Debug("cannot list topics to learn their IDs", "project", s.principal.Project, "err", err)
	}
	for _, n := range names {
		s.srv.topicIDs.id(s.principal.Project, n, true)
		s.srv.topicIDs.id(s.principal.Project, n+jsonSuffix, true)
	}
}
