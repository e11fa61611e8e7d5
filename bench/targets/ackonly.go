// Package targets starts what the bench measures, side by side on the same
// machine: the relay (end to end with the SLS stand-in, or its ack path
// alone), an acknowledge-only Kafka endpoint, franz-go's kfake broker, and
// a plain fsync'd file.
package targets

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AckOnly is a Kafka endpoint that frames requests and answers success for
// every partition, storing nothing: the ceiling of what a client load can
// reach on this machine. A goroutine per connection; PLAINTEXT, or TLS with
// SASL PLAIN accepting any credentials.
type AckOnly struct {
	ln         net.Listener
	topic      string
	partitions int32
	offset     atomic.Int64
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      map[net.Conn]struct{}
	closed     bool
	log        *groupLog // ack-fsync: a Produce is answered once synced here
}

// StartAckOnly listens on addr (TLS when tlsCfg is set). With syncDir set
// it is the ack-fsync endpoint: a Produce is answered only once its frame
// is fdatasync'd in a file there (see groupLog).
func StartAckOnly(addr string, tlsCfg *tls.Config, topic string, partitions int32, syncDir string) (*AckOnly, error) {
	var log *groupLog
	if syncDir != "" {
		var err error
		if log, err = openGroupLog(syncDir); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if log != nil {
			log.close()
		}
		return nil, err
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	a := &AckOnly{ln: ln, topic: topic, partitions: partitions, conns: map[net.Conn]struct{}{}, log: log}
	a.wg.Add(1)
	go a.accept()
	return a, nil
}

// Addr is the listening address.
func (a *AckOnly) Addr() string { return a.ln.Addr().String() }

// Close stops listening and drops every connection.
func (a *AckOnly) Close() error {
	a.mu.Lock()
	a.closed = true
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	err := a.ln.Close()
	a.wg.Wait()
	if a.log != nil {
		if e := a.log.close(); err == nil {
			err = e
		}
	}
	return err
}

func (a *AckOnly) accept() {
	defer a.wg.Done()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.conns[c] = struct{}{}
		a.mu.Unlock()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.serve(c)
			a.mu.Lock()
			delete(a.conns, c)
			a.mu.Unlock()
			c.Close()
		}()
	}
}

func (a *AckOnly) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	out := newAnswers(c, r, a.log != nil)
	defer out.close()
	rawSASL := false // after SaslHandshake v0 the next frame is a bare token
	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > 128<<20 {
			return
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		if rawSASL {
			rawSASL = false
			if out.send([]byte{0, 0, 0, 0}, nil) != nil {
				return
			}
			continue
		}
		resp, v0handshake, err := a.handle(buf)
		if err != nil {
			return
		}
		rawSASL = v0handshake
		var synced <-chan error
		if a.log != nil && binary.BigEndian.Uint16(buf) == 0 { // a Produce (handle checked the length)
			synced = a.log.append(buf)
		}
		if resp != nil {
			if out.send(resp, synced) != nil {
				return
			}
		}
	}
}

// answers writes a connection's responses in request order. For ack-only
// it writes each at once; for ack-fsync a goroutine writes each once its
// request is synced, so that requests are read meanwhile and a client's
// pipelined requests can share a sync.
type answers struct {
	c    net.Conn
	r    *bufio.Reader // flushed when nothing more is buffered to read
	w    *bufio.Writer
	q    chan queuedAnswer // nil: written at once
	done chan struct{}
	err  error // the write that failed; the queue's goroutine's alone
}

type queuedAnswer struct {
	out    []byte
	synced <-chan error // nil: nothing to wait for
}

func newAnswers(c net.Conn, r *bufio.Reader, queued bool) *answers {
	a := &answers{c: c, r: r, w: bufio.NewWriterSize(c, 16<<10)}
	if queued {
		a.q, a.done = make(chan queuedAnswer, 64), make(chan struct{})
		go a.writeQueued()
	}
	return a
}

// send writes out, after synced says so if set. Reader goroutine only.
func (a *answers) send(out []byte, synced <-chan error) error {
	if a.q == nil {
		if _, err := a.w.Write(out); err != nil {
			return err
		}
		if a.r.Buffered() == 0 {
			return a.w.Flush()
		}
		return nil
	}
	a.q <- queuedAnswer{out, synced}
	return nil
}

func (a *answers) writeQueued() {
	defer close(a.done)
	for qa := range a.q {
		if a.err != nil {
			continue // drained; the connection is closed
		}
		if qa.synced != nil {
			a.err = <-qa.synced
		}
		if a.err == nil {
			_, a.err = a.w.Write(qa.out)
		}
		if a.err == nil && len(a.q) == 0 {
			a.err = a.w.Flush()
		}
		if a.err != nil {
			a.c.Close() // nothing more is answered: the reader ends too
		}
	}
}

// close waits for the queued answers.
func (a *answers) close() {
	if a.q != nil {
		close(a.q)
		<-a.done
	}
}

var errUnsupported = errors.New("unsupported request")

// handle answers one request frame; nil out means no response (acks=0).
func (a *AckOnly) handle(b []byte) (out []byte, v0handshake bool, err error) {
	if len(b) < 10 {
		return nil, false, errUnsupported
	}
	key := int16(binary.BigEndian.Uint16(b))
	ver := int16(binary.BigEndian.Uint16(b[2:]))
	corr := binary.BigEndian.Uint32(b[4:])
	cl := int16(binary.BigEndian.Uint16(b[8:]))
	off := 10
	if cl > 0 {
		off += int(cl)
	}
	req := kmsg.RequestForKey(key)
	if req == nil || off > len(b) {
		return nil, false, errUnsupported
	}
	if key == 18 && ver > 3 { // ApiVersions newer than known: answer v0 UNSUPPORTED_VERSION
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = 35
		resp.ApiKeys = supported()
		return frame(corr, resp, false), false, nil
	}
	req.SetVersion(ver)
	body := b[off:]
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return nil, false, err
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return nil, false, err
	}
	var resp kmsg.Response
	switch q := req.(type) {
	case *kmsg.ApiVersionsRequest:
		r := q.ResponseKind().(*kmsg.ApiVersionsResponse)
		r.ApiKeys = supported()
		resp = r
	case *kmsg.MetadataRequest:
		resp = a.metadata(q)
	case *kmsg.ProduceRequest:
		if q.Acks == 0 {
			return nil, false, nil
		}
		r := q.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range q.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.BaseOffset = a.offset.Add(1)
				rp.LogAppendTime = -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		resp = r
	case *kmsg.SASLHandshakeRequest:
		r := q.ResponseKind().(*kmsg.SASLHandshakeResponse)
		r.SupportedMechanisms = []string{"PLAIN"}
		resp, v0handshake = r, ver == 0
	case *kmsg.SASLAuthenticateRequest:
		resp = q.ResponseKind()
	case *kmsg.InitProducerIDRequest:
		r := q.ResponseKind().(*kmsg.InitProducerIDResponse)
		r.ProducerID = a.offset.Add(1)
		resp = r
	default:
		return nil, false, errUnsupported
	}
	resp.SetVersion(ver)
	return frame(corr, resp, key != 18 && req.IsFlexible()), v0handshake, nil
}

func (a *AckOnly) metadata(q *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	r := q.ResponseKind().(*kmsg.MetadataResponse)
	host, port, _ := net.SplitHostPort(a.Addr())
	p, _ := strconv.Atoi(port)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = 1, host, int32(p)
	r.Brokers = []kmsg.MetadataResponseBroker{b}
	r.ControllerID = 1
	names := []string{a.topic}
	if q.Topics != nil {
		names = names[:0]
		for _, t := range q.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	for _, name := range names {
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = kmsg.StringPtr(name)
		if name != a.topic {
			t.ErrorCode = 3 // UNKNOWN_TOPIC_OR_PARTITION
		} else {
			for i := range a.partitions {
				pp := kmsg.NewMetadataResponseTopicPartition()
				pp.Partition, pp.Leader = i, 1
				pp.Replicas, pp.ISR = []int32{1}, []int32{1}
				t.Partitions = append(t.Partitions, pp)
			}
		}
		r.Topics = append(r.Topics, t)
	}
	return r
}

func supported() []kmsg.ApiVersionsResponseApiKey {
	var keys []kmsg.ApiVersionsResponseApiKey
	for _, k := range []struct{ key, max int16 }{{0, 9}, {3, 12}, {17, 1}, {18, 3}, {22, 4}, {36, 2}} {
		max := kmsg.RequestForKey(k.key).MaxVersion()
		if k.max < max {
			max = k.max
		}
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k.key, MinVersion: 0, MaxVersion: max})
	}
	return keys
}

func frame(corr uint32, resp kmsg.Response, flexHeader bool) []byte {
	out := make([]byte, 8, 64)
	binary.BigEndian.PutUint32(out[4:], corr)
	if flexHeader {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("bad tags")
	}
	b = b[k:]
	for range n {
		if _, k = binary.Uvarint(b); k <= 0 {
			return nil, fmt.Errorf("bad tag")
		}
		b = b[k:]
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return nil, fmt.Errorf("bad tag")
		}
		b = b[k+int(l):]
	}
	return b, nil
}
