package wal

import "time"

// StreamKey names one stream: everything one Kafka partition of one topic of
// one SLS project receives. Partition i of a topic is the i-th readwrite
// shard of the Logstore.
type StreamKey struct {
	Project   string
	Logstore  string
	Partition int32
}

// Credential is the AccessKey a producer authenticated with; delivery signs
// PutLogs with it. The WAL never writes AccessKeySecret in the clear.
type Credential struct {
	AccessKeyID     string
	AccessKeySecret string
}

// Entry is one validated producer batch, stored exactly as the producer sent
// it (still compressed), plus what delivery needs to turn it into SLS logs.
type Entry struct {
	// BaseOffset is the Kafka offset of the first record; the WAL assigns it
	// on append (any value passed in is ignored). The next entry of the
	// stream starts at BaseOffset+Records.
	BaseOffset int64
	// Magic is the message format: 0 or 1 (MessageSet), 2 (RecordBatch).
	Magic int8
	// Codec is the compression of the batch: 0 none, 1 gzip, 2 snappy,
	// 3 lz4, 4 zstd. For a MessageSet it is the codec of its wrapper
	// messages (0 when the set is uncompressed).
	Codec int8
	// Records is how many records the batch holds (after decompression),
	// as Validate counted them: the v2 header's count, a magic 1 wrapper's
	// offset + 1 (batch/wrappercount.go). Delivery decodes the batch and
	// sends every record it holds.
	Records int32
	// ReceivedAt is when the relay read the request, in Unix nanoseconds:
	// the fallback for records without an acceptable timestamp.
	ReceivedAt int64
	// JSON is set for topics named "<logstore>.json": every record's value
	// is expanded into one field per top-level JSON key.
	JSON bool
	// Delivered is set for a batch SLS accepted before the relay
	// acknowledged it (the first write of an AccessKey to a Logstore,
	// sent synchronously to prove the key may write): it is stored for
	// its offsets only, and delivery skips it. Read also sets it for an
	// entry inside a delivered span (Reader.MarkDelivered).
	Delivered bool
	// Producer is the peer address ("ip:port") the batch came from.
	Producer string
	// ClientID is the Kafka client.id of the producer ("" when absent).
	ClientID string
	// SASLUser is who the producer logged in as: the relay user (SASL or
	// client certificate), or the SASL username of an AccessKey login (the
	// Project); "" without a login. ClientSoftware its software name and version from
	// ApiVersions v3+ ("name/version", "" when it sent none). Delivery
	// may show them as LogGroup tags (shardwriter's attribution).
	SASLUser       string
	ClientSoftware string
	// Credential signs the PutLogs that deliver this entry.
	Credential Credential
	// Data is the batch as received: one RecordBatch (magic 2) or a
	// MessageSet (magic 0/1).
	Data []byte
}

// ReceivedTime returns ReceivedAt as a time.Time.
func (e *Entry) ReceivedTime() time.Time { return time.Unix(0, e.ReceivedAt) }
