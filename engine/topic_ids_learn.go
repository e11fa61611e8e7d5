package engine

// Topic IDs a node never handed out. Topic IDs are derived from project
// and topic (topics.go), the same on every node, but a node maps back only
// the IDs it reported in Metadata. In a fleet behind one address a client
// may learn an ID from one node and ask another for Metadata by that ID
// alone: before answering UNKNOWN_TOPIC_ID, the node lists the project's
// Logstores from the catalog and learns their IDs. This helps only a
// catalog that can list them (StaticCatalog); SLS's cannot
// (shardwriter.Catalog.Topics), which is why Produce stops at v12, the
// last version that names topics (00_produce.go).

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

// learnTopicIDs makes the topic IDs a Metadata request names known, if
// the principal's project has those topics and the catalog lists them.
func (s *session) learnTopicIDs(req *kmsg.MetadataRequest) {
	unknown := false
	for _, t := range req.Topics {
		if t.Topic == nil || *t.Topic == "" {
			if _, ok := s.srv.topicIDs.lookup(t.TopicID); !ok {
				unknown = true
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
