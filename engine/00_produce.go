package engine

// Produce: v0 to v12; message formats v0/v1 (MessageSet) and v2
// (RecordBatch), every codec.
//
// Behaviour:
//   - Each partition's batch is validated before anything is stored (CRCs,
//     lengths, record counts, codec, size against MaxMessageBytes): a bad
//     one gets CORRUPT_MESSAGE / INVALID_RECORD / MESSAGE_TOO_LARGE /
//     UNSUPPORTED_COMPRESSION_TYPE; other partitions of the request are
//     unaffected.
//   - Topic = Logstore ("name.json": Logstore "name", JSON expansion);
//     partition i = the i-th readwrite shard. Catalog errors apply to
//     every partition of the topic.
//   - The first batch of an AccessKey for a Logstore (until the catalog
//     says WriteProven) is delivered by the catalog before the answer
//     (ProveWrite), so a key that may not write gets
//     TOPIC_AUTHORIZATION_FAILED and nothing acknowledged; on success it
//     is stored flagged Delivered, for its offsets only.
//   - Valid batches are appended to the WAL unchanged; the response
//     carries the base offset the stream assigned. acks=1 answers once the
//     WAL accepted the batch, acks=-1 once it is synced, acks=0 never (the
//     request still holds its place in the connection's order; an
//     acks=0 Produce with a partition in error closes the connection
//     after what went before, as Kafka does). A WAL failure is
//     KAFKA_STORAGE_ERROR, which shippers retry.
//   - A batch from an idempotent producer that repeats one of its last 5
//     (same producer ID, epoch and sequence numbers: a retry after a lost
//     answer) is answered with the offset it got then and not stored
//     again (see dedup).
//   - Transactional produce gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
//     acks other than -1, 0, 1 get INVALID_REQUIRED_ACKS.
//   - When the buffer backs up (see Throttler) the response carries
//     throttle_time_ms and the connection is not read for that long.
//   - Not v13: it addresses topics by ID (KIP-516) and adds nothing else.
//     A topic ID is a one-way hash of project and topic (topics.go): a
//     node maps it back only to names it has seen, and the catalog cannot
//     list a project's Logstores (shardwriter.Catalog.Topics: SLS's RAM
//     policy for Kafka producers does not grant ListLogStores). In a fleet
//     a client that learned an ID from one node and produced by ID to
//     another got UNKNOWN_TOPIC_ID, and franz-go gave the records up after
//     4 of those. An ID cannot carry the name instead: a Logstore name is
//     up to 63 characters of [a-z0-9_-] ("Logstore naming rules",
//     https://www.alibabacloud.com/help/en/sls/developer-reference/logstores),
//     63 × log2(38) ≈ 330 bits, and an ID has 128. Up to v12 every client names its topics, which every
//     node can resolve. Clients pick the highest version both sides
//     support from ApiVersions (franz-go, sarama, librdkafka, kafka-go,
//     Java), so they send v12 at most.

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// maxProduceVersion is the highest Produce version served (see above).
const maxProduceVersion = 12

func init() {
	register(0, api{min: 0, max: maxProduceVersion, handle: (*session).handleProduce})
}

func (s *session) handleProduce(r *request) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	// Every partition gets its response element now; appends fill theirs
	// in when they complete, and the last one to finish sends it.
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		t := &resp.Topics[i]
		t.Default()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			p := &t.Partitions[j]
			p.Default()
			p.Partition, p.BaseOffset = rp.Partition, -1
		}
	}

	var topErr int16
	switch {
	case req.TransactionID != nil:
		topErr = kerr.TransactionalIDAuthorizationFailed.Code
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		topErr = kerr.InvalidRequiredAcks.Code
	}

	// topicErrs: the catalog's error per topic, which tells an unknown
	// Project from an unknown Logstore in the refusal counted.
	topicErrs := make([]error, len(req.Topics))
	var outstanding atomic.Int32
	outstanding.Store(1) // held until every append is issued
	finish := func() {
		if outstanding.Add(-1) == 0 {
			failed := false
			for i := range resp.Topics {
				for _, p := range resp.Topics[i].Partitions {
					if p.ErrorCode != 0 {
						failed = true
						countPartitionError(p.ErrorCode)
						s.refusedPartition(req.Topics[i].Topic, p, topicErrs[i])
					}
				}
			}
			produceDuration.UpdateDuration(r.received)
			// acks=0 gets no answer, so an error closes the connection
			// instead, as a Kafka broker does "so that the producer
			// client will know that some error has happened and will
			// refresh its metadata" (KafkaApis.handleProduceRequest).
			if failed && req.Acks == 0 {
				s.complete(r.slot, nil, true)
			} else {
				s.respond(r.slot, r.hdr.corrID, resp)
			}
			// Every append has completed and the response holds
			// copies: nothing refers to the frame's bytes any more.
			requestFrames.put(r.frame)
		}
	}

	var throttle time.Duration
	ctx := newLazyDeadline(r.received.Add(catalogTimeout))
	defer ctx.stop()
	for i, rt := range req.Topics {
		t := &resp.Topics[i]
		name := rt.Topic
		code := topErr
		logstore, json := splitTopic(name)
		if code == 0 && !s.principal.mayWrite(logstore) {
			code = kerr.TopicAuthorizationFailed.Code // a relay user's rights, before the catalog
		}
		var partitions int32
		proven := false
		if code == 0 {
			var err error
			partitions, err = s.srv.catalog.Partitions(ctx, s.principal.Project, s.principal.Credential, logstore)
			code, topicErrs[i] = errorCode(err), err
			proven = s.srv.catalog.WriteProven(s.principal.Project, s.principal.Credential, logstore)
		}
		for j, rp := range rt.Partitions {
			p := &t.Partitions[j]
			if code != 0 {
				p.ErrorCode = code
				continue
			}
			if rp.Partition < 0 || rp.Partition >= partitions {
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			info, err := validate(rp.Records, batch.ValidateOptions{
				MaxBytes:       s.srv.opts.MaxMessageBytes,
				ProduceVersion: req.Version,
			})
			if err != nil {
				s.srv.log.Debug("rejected batch", "peer", s.peer, "topic", name, "partition", rp.Partition, "err", err)
				refuse(p, req.Version, validationCode(err), err)
				continue
			}
			key := wal.StreamKey{Project: s.principal.Project, Logstore: logstore, Partition: rp.Partition}
			entry := &wal.Entry{
				Magic:          info.Magic,
				Codec:          info.Codec,
				Records:        info.Records,
				ReceivedAt:     r.received.UnixNano(),
				JSON:           json,
				Producer:       s.peer,
				ClientID:       r.hdr.clientID,
				SASLUser:       loginUser(s.principal, s.ln),
				ClientSoftware: s.software,
				Credential:     s.principal.Credential,
				Data:           rp.Records,
			}
			if th := s.srv.opts.Throttle; th != nil {
				throttle = max(throttle, th.ThrottleTime(key, len(rp.Records)))
			}
			idempotent := info.ProducerID >= 0 && info.BaseSequence >= 0
			last := info.BaseSequence + info.Records - 1
			if idempotent {
				if base, dup := s.srv.dedup.stored(key, json, info.ProducerID, info.ProducerEpoch, info.BaseSequence, last); dup {
					p.BaseOffset = base // a retry of a stored batch
					duplicateBatches.Inc()
					continue
				}
			}
			if !proven {
				// Never acknowledge what the destination may refuse:
				// the first batch of a key for this Logstore goes there
				// now, and is stored only for its offsets.
				if err := s.srv.catalog.ProveWrite(ctx, key, entry); err != nil {
					topicErrs[i] = err
					s.srv.log.Debug("write not proven", "peer", s.peer, "topic", name, "partition", rp.Partition, "err", err)
					refuse(p, req.Version, errorCode(err), err)
					continue
				}
				entry.Delivered, proven = true, true
				provenWrites.Inc()
			}
			outstanding.Add(1)
			s.srv.appender.Append(key, entry, req.Acks == -1, func(base int64, err error) {
				if err != nil {
					p.ErrorCode = kerr.KafkaStorageError.Code
				} else {
					p.BaseOffset = base
					countIn(key, entry.Records, len(entry.Data))
					countUserIn(s.principal.User, len(entry.Data))
					s.shipper.stored(name, entry.Records, len(entry.Data))
					if idempotent {
						s.srv.dedup.remember(key, json, info.ProducerID, info.ProducerEpoch, info.BaseSequence, last, base)
					}
				}
				finish()
			})
		}
	}
	if throttle > 0 {
		resp.ThrottleMillis = int32(throttle / time.Millisecond)
		observeThrottle(throttle)
		s.shipper.throttled(throttle)
		s.refuse(RefusalThrottle, "throttled", fmt.Sprintf("Produce throttled for %v", throttle))
		s.mute(throttle)
	}
	finish()
}

// refuse sets p's error code and, from Produce v8 on (which has the
// field), err's text as its message.
func refuse(p *kmsg.ProduceResponseTopicPartition, version, code int16, err error) {
	p.ErrorCode = code
	if version >= 8 {
		msg := err.Error()
		p.ErrorMessage = &msg
	}
}

// validationCode maps a batch validation error to its Kafka error code;
// anything the validator did not classify is a corrupt message.
func validationCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.CorruptMessage.Code
}
