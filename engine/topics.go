package engine

import (
	"crypto/sha256"
	"strings"
	"sync"
	"sync/atomic"
)

// jsonSuffix marks a topic whose records are JSON to expand into fields:
// topic "name.json" writes to Logstore "name".
const jsonSuffix = ".json"

// splitTopic maps a Kafka topic to its Logstore and JSON mode.
func splitTopic(topic string) (logstore string, json bool) {
	if ls, ok := strings.CutSuffix(topic, jsonSuffix); ok && ls != "" {
		return ls, true
	}
	return topic, false
}

// topicRef is what a topic ID stands for.
type topicRef struct {
	project string
	topic   string
}

// topicIDs gives topics the stable IDs that Metadata v10+ reports
// (KIP-516), and a Metadata request may name topics by. An ID is derived
// from project and topic, so it is the same on every relay node and after
// restarts, and no state needs persisting; the table only maps IDs seen in
// Metadata back to names. (Produce v13, which names topics by ID alone, is
// not served: see 00_produce.go.) Safe for concurrent use.
type topicIDs struct {
	m sync.Map // [16]byte -> topicRef
	// failed counts IDs remembered for topics the catalog refused: they
	// are kept (so Metadata by ID reports the catalog's error, not
	// UNKNOWN_TOPIC_ID) up to maxFailedTopicIDs, so that clients asking for
	// made-up names cannot grow the table without bound.
	failed atomic.Int64
}

const maxFailedTopicIDs = 1 << 16

// id returns the ID of project's topic, remembered so that Metadata by ID
// can name it; exists tells whether the catalog knows the topic.
func (t *topicIDs) id(project, topic string, exists bool) [16]byte {
	sum := sha256.Sum256([]byte(project + "\x00" + topic))
	var id [16]byte
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x80 // an RFC 9562 version 8 (custom) UUID
	id[8] = id[8]&0x3f | 0x80
	if _, known := t.m.Load(id); known {
		return id
	}
	if exists || t.failed.Add(1) <= maxFailedTopicIDs {
		t.m.Store(id, topicRef{project, topic})
	}
	return id
}

// lookup returns the topic an ID names, if this node handed it out.
func (t *topicIDs) lookup(id [16]byte) (topicRef, bool) {
	v, ok := t.m.Load(id)
	if !ok {
		return topicRef{}, false
	}
	return v.(topicRef), true
}
