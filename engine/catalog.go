package engine

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/slsrelay/slsrelay/wal"
)

// Principal is who a connection writes as: the SLS Project named by the SASL
// username and the AccessKey from the password (AccessKeyId#AccessKeySecret).
// Listeners without SASL use the principal from their configuration. A
// relay user's login (SCRAM, PLAIN against its password, a client
// certificate) yields the Project and relay-held AccessKey it maps to, its
// name in User and the Logstores it may write in Rights.
type Principal struct {
	Project    string
	Credential wal.Credential
	// User is the relay user's name; "" for an AccessKey login.
	User string
	// Rights limits the Logstores written; nil allows all.
	Rights *TopicRights
}

// Catalog answers which Logstores (topics) and shards (partitions) a
// principal may write. The SLS implementation lives in shardwriter; tests
// and the embedded default use StaticCatalog.
//
// Methods must be safe for concurrent use. They may block on the network:
// the engine calls them off the event loops, one request of a connection at
// a time. Errors wrapping a *kerr.Error are reported to the client as that
// error (TOPIC_AUTHORIZATION_FAILED for a wrong key or missing permission,
// UNKNOWN_TOPIC_OR_PARTITION for a missing Project or Logstore); any other
// error means the catalog cannot answer yet and becomes
// LEADER_NOT_AVAILABLE, which clients retry.
type Catalog interface {
	// Partitions returns how many partitions (readwrite shards) logstore
	// of project has, if cred may write it.
	Partitions(ctx context.Context, project string, cred wal.Credential, logstore string) (int32, error)
	// Topics lists the Logstores of project, for Metadata requests that
	// ask for all topics.
	Topics(ctx context.Context, project string, cred wal.Credential) ([]string, error)
	// WriteProven reports whether cred is known to may write logstore of
	// project: its batches can be stored and acknowledged at once. It is
	// asked for every topic of every Produce request, so it must answer
	// from memory (a map lookup), never block.
	WriteProven(project string, cred wal.Credential, logstore string) bool
	// ProveWrite delivers e, a validated batch for stream k signed with
	// e.Credential, to its destination itself, before the producer is
	// answered; the engine calls it for a batch whose (key, logstore)
	// WriteProven denies. nil: delivered, and the pair is now proven; the
	// engine stores e flagged Delivered (for its offsets) and answers as
	// usual. An error wrapping a *kerr.Error is answered as that error
	// (TOPIC_AUTHORIZATION_FAILED: the key may not write), anything else
	// as LEADER_NOT_AVAILABLE, which producers retry (retriable in Kafka's
	// error table, https://kafka.apache.org/protocol#protocol_error_codes);
	// either way nothing is stored. e.Data is valid only during the
	// call: an implementation keeps a copy of what it needs later.
	ProveWrite(ctx context.Context, k wal.StreamKey, e *wal.Entry) error
}

// errorCode maps a catalog error to the Kafka error code the client sees.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.LeaderNotAvailable.Code
}
