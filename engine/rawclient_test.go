package engine

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"

	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// rawConn speaks the Kafka wire protocol by hand, so tests can send what
// no well-behaved client would.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	corr int32
}

func dialRaw(t testing.TB, addr string, tlsCfg *tls.Config) *rawConn {
	t.Helper()
	var c net.Conn
	var err error
	if tlsCfg != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tlsCfg)
	} else {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

// encodeRequest frames req with a v1 (or, if flexible, v2) header.
func encodeRequest(corr int32, req kmsg.Request) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// send writes req and returns its correlation id.
func (c *rawConn) send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	c.write(encodeRequest(c.corr, req))
	return c.corr
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readFrame reads one size-prefixed frame.
func (c *rawConn) readFrame() ([]byte, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.c, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(c.c, b)
	return b, err
}

// read reads the response to req sent as corr.
func (c *rawConn) read(corr int32, req kmsg.Request) kmsg.Response {
	c.t.Helper()
	b, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("read response to %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		c.t.Fatalf("response correlation id %d, want %d", got, corr)
	}
	b = b[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != 18 {
		b = b[1:]
	}
	if err := resp.ReadFrom(b); err != nil {
		c.t.Fatalf("parse %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	return c.read(c.send(req), req)
}

// expectClosed fails unless the relay closes the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1024)
	for {
		_, err := c.c.Read(b)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatal("connection still open, want it closed")
		}
		return
	}
}

// saslPlain authenticates c with SaslHandshake v1 + SaslAuthenticate.
func (c *rawConn) saslPlain(user, password string) *kmsg.SASLAuthenticateResponse {
	c.t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if r := c.roundTrip(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		c.t.Fatalf("handshake error %d", r.ErrorCode)
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version = 1
	auth.SASLAuthBytes = []byte("\x00" + user + "\x00" + password)
	return c.roundTrip(auth).(*kmsg.SASLAuthenticateResponse)
}

// recordBatch encodes an uncompressed v2 batch of values with a correct CRC.
func recordBatch(values ...string) []byte { return producerBatch(-1, -1, -1, values...) }

// producerBatch is recordBatch from an idempotent producer: its ID, epoch
// and the sequence number of the first record (-1s for none).
func producerBatch(producerID int64, epoch int16, firstSeq int32, values ...string) []byte {
	now := time.Now().UnixMilli()
	recs := make([]batchtest.Record, len(values))
	for i, v := range values {
		recs[i] = batchtest.Record{Value: []byte(v), Timestamp: now}
	}
	return batchtest.UncompressedRecordBatch(recs, func(b *kmsg.RecordBatch) {
		// kmsg's zero leader epoch rather than a producer's -1: the
		// committed FuzzSession seeds were generated with it.
		b.PartitionLeaderEpoch = 0
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = producerID, epoch, firstSeq
	})
}

// produceRequest builds a Produce request for one topic.
func produceRequest(version int16, acks int16, topic string, batches map[int32][]byte) *kmsg.ProduceRequest {
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

// partitionErrors returns each partition's error code of a one-topic response.
func partitionErrors(resp *kmsg.ProduceResponse) map[int32]int16 {
	m := map[int32]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			m[p.Partition] = p.ErrorCode
		}
	}
	return m
}
