package kafkatest

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// RecordBatch encodes an uncompressed v2 batch of values with a correct
// CRC, timestamped now.
func RecordBatch(values ...string) []byte { return ProducerBatch(-1, -1, -1, values...) }

// ProducerBatch is RecordBatch from an idempotent producer: its ID, epoch
// and the sequence number of the first record (-1s for none).
func ProducerBatch(producerID int64, epoch int16, firstSeq int32, values ...string) []byte {
	now := time.Now().UnixMilli()
	recs := make([]batchtest.Record, len(values))
	for i, v := range values {
		recs[i] = batchtest.Record{Value: []byte(v), Timestamp: now}
	}
	return batchtest.UncompressedRecordBatch(recs, func(b *kmsg.RecordBatch) {
		// kmsg's zero leader epoch rather than a producer's -1: engine's
		// committed FuzzSession seeds were generated with it.
		b.PartitionLeaderEpoch = 0
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = producerID, epoch, firstSeq
	})
}

// ProduceRequest builds a Produce request of the given version for one
// topic, with a batch per partition.
func ProduceRequest(version int16, acks int16, topic string, batches map[int32][]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, acks, 5000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = topic
	for p := int32(0); p < int32(len(batches)+8); p++ {
		data, ok := batches[p]
		if !ok {
			continue
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, data
		t.Partitions = append(t.Partitions, rp)
	}
	req.Topics = append(req.Topics, t)
	return req
}

// ProduceValues is a Produce v7 (RecordBatch, not flexible) of values to
// one partition.
func ProduceValues(topic string, partition int32, acks int16, values ...string) *kmsg.ProduceRequest {
	return ProduceRequest(7, acks, topic, map[int32][]byte{partition: RecordBatch(values...)})
}

// PartitionErrors returns each partition's error code of a one-topic
// response.
func PartitionErrors(resp *kmsg.ProduceResponse) map[int32]int16 {
	m := map[int32]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			m[p.Partition] = p.ErrorCode
		}
	}
	return m
}

// ProduceResult returns the throttle of a one-partition Produce answer and
// its Kafka error.
func ProduceResult(resp kmsg.Response) (time.Duration, error) {
	pr := resp.(*kmsg.ProduceResponse)
	th := time.Duration(pr.ThrottleMillis) * time.Millisecond
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		return th, fmt.Errorf("Produce answer with %d topics", len(pr.Topics))
	}
	return th, kerr.ErrorForCode(pr.Topics[0].Partitions[0].ErrorCode)
}

// CheckProduced fails unless resp acknowledges every partition.
func CheckProduced(resp kmsg.Response) error {
	pr, ok := resp.(*kmsg.ProduceResponse)
	if !ok {
		return fmt.Errorf("got %T, want a Produce response", resp)
	}
	for _, t := range pr.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return fmt.Errorf("%s[%d]: error code %d", t.Topic, p.Partition, p.ErrorCode)
			}
		}
	}
	return nil
}

// Produce sends one Produce of values to a partition (ProduceValues) and
// returns that partition's Kafka error.
func (c *Conn) Produce(topic string, partition int32, acks int16, values ...string) error {
	resp, err := c.RoundTrip(ProduceValues(topic, partition, acks, values...), 10*time.Second)
	if err != nil {
		return err
	}
	_, err = ProduceResult(resp)
	return err
}
