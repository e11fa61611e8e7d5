package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The raw fleet: one socket per simulated shipper and one goroutine each
// (a goroutine costs a few KiB; a franz-go client costs several goroutines,
// buffers and a metadata loop, which 10,000 of would eat the machine). Each
// connection sends Produce v3 with one RecordBatch per request, one request
// in flight, like a small shipper flushing every RawInterval.

const rawMaxBatch = 2048

// rawFormatter frames the raw fleet's requests (header v1, or v2 for
// flexible versions).
var rawFormatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID("slsbench-raw"))

func runRaw(ctx context.Context, cfg Config, st *Stats, drain time.Duration) error {
	if cfg.Partitions < 1 {
		cfg.Partitions = 1
	}
	if cfg.RawInterval <= 0 {
		cfg.RawInterval = time.Second
	}
	start := time.Now()
	dialSem := make(chan struct{}, 128)
	var wg sync.WaitGroup
	for i := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case dialSem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			c, r, err := dialRaw(cfg)
			<-dialSem
			if err != nil {
				st.setErr(err)
				return
			}
			st.Conns.Add(1)
			defer st.Conns.Add(-1)
			rc := &rawConn{c: c, r: r, cfg: cfg, st: st, idx: i,
				rnd: rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))}
			defer c.Close()
			stop := make(chan struct{})
			go func() {
				select {
				case <-ctx.Done():
				case <-stop:
				}
				// Let the request in flight finish, then unblock the read.
				c.SetDeadline(time.Now().Add(drain))
			}()
			defer close(stop)
			rc.loop(ctx, newPacer(cfg.Pace, 1/float64(cfg.Conns), start))
		}()
	}
	wg.Wait()
	return nil
}

type rawConn struct {
	c    net.Conn
	r    *bufio.Reader
	cfg  Config
	st   *Stats
	idx  int
	rnd  *rand.Rand
	corr int32
	buf  []byte
}

func (rc *rawConn) loop(ctx context.Context, p *pacer) {
	interval := rc.cfg.RawInterval
	// Spread the fleet's flushes over the interval.
	next := time.Now().Add(time.Duration(rc.rnd.Int64N(int64(interval))))
	for k := 0; ctx.Err() == nil; k++ {
		n := rawMaxBatch
		if rc.cfg.Pace.Rate > 0 {
			t := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			next = next.Add(interval)
			if n = p.take(rawMaxBatch, ctx.Done()); n == 0 {
				return
			}
		} else {
			n = 1 + rc.rnd.IntN(rawMaxBatch/4) // as fast as acks allow: batches of up to 512
		}
		if err := rc.send(int32((rc.idx+k)%rc.cfg.Partitions), n); err != nil {
			if ctx.Err() == nil {
				rc.st.setErr(err)
			}
			return
		}
	}
}

func (rc *rawConn) send(partition int32, n int) error {
	now := time.Now()
	ids := make([]uint64, n)
	var raw int64
	vals := make([][]byte, n)
	for i := range n {
		ids[i] = rc.st.IDs.Next()
		size := rc.cfg.Sizes.Draw(rc.rnd)
		vals[i] = Value(make([]byte, 0, size+32), ids[i], now, size, rc.rnd)
		raw += int64(len(vals[i]))
	}
	batch, err := EncodeBatch(vals, now, rc.cfg.Profile.Compression)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = 3
	req.Acks = int16(rc.cfg.Acks)
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = rc.cfg.Topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	rc.corr++
	rc.buf = rawFormatter.AppendRequest(rc.buf[:0], req, rc.corr)
	rc.st.Sent.Add(int64(n))
	if _, err := rc.c.Write(rc.buf); err != nil {
		rc.st.Failed.Add(int64(n))
		return err
	}
	rc.st.WireBytes.Add(int64(len(rc.buf)))
	rc.st.Requests.Add(1)
	body, err := readFrame(rc.r)
	if err != nil {
		rc.st.Failed.Add(int64(n))
		return err
	}
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != rc.corr {
		rc.st.Failed.Add(int64(n))
		return fmt.Errorf("response out of order")
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 3
	if err := resp.ReadFrom(body[4:]); err != nil {
		rc.st.Failed.Add(int64(n))
		return err
	}
	if resp.ThrottleMillis > 0 {
		rc.st.Throttles.Add(1)
		rc.st.ThrottleUs.Add(int64(resp.ThrottleMillis) * 1000)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				rc.st.Failed.Add(int64(n))
				rc.st.setErr(fmt.Errorf("produce error code %d", p.ErrorCode))
				if resp.ThrottleMillis > 0 {
					time.Sleep(time.Duration(resp.ThrottleMillis) * time.Millisecond)
				}
				return nil
			}
		}
	}
	lat := time.Since(now)
	for _, id := range ids {
		rc.st.Lat.Record(lat)
		rc.st.AckedIDs.Set(id)
	}
	rc.st.Acked.Add(int64(n))
	rc.st.AckedBytes.Add(raw)
	if resp.ThrottleMillis > 0 { // Kafka ≥ 2.0 semantics: the client waits after the response
		time.Sleep(time.Duration(resp.ThrottleMillis) * time.Millisecond)
	}
	return nil
}

func readFrame(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > 128<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

var gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression); return w }}

// EncodeBatch builds a v2 RecordBatch of values (no keys, no headers),
// compressed with codec (none, gzip or lz4).
func EncodeBatch(vals [][]byte, ts time.Time, codec string) ([]byte, error) {
	var recs []byte
	for i, v := range vals {
		var body []byte
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, -1)       // no key
		body = binary.AppendVarint(body, int64(len(v)))
		body = append(body, v...)
		body = binary.AppendVarint(body, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	var attr int16
	switch codec {
	case "", "none":
	case "gzip":
		attr = 1
		var b bytes.Buffer
		w := gzipPool.Get().(*gzip.Writer) // a gzip writer costs ~1 MB to make
		w.Reset(&b)
		w.Write(recs)
		err := w.Close()
		gzipPool.Put(w)
		if err != nil {
			return nil, err
		}
		recs = b.Bytes()
	case "lz4":
		attr = 3
		var b bytes.Buffer
		w := lz4.NewWriter(&b)
		w.Write(recs)
		if err := w.Close(); err != nil {
			return nil, err
		}
		recs = b.Bytes()
	default:
		return nil, fmt.Errorf("raw fleet: unsupported compression %q", codec)
	}
	ms := ts.UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: attr,
		LastOffsetDelta: int32(len(vals) - 1), FirstTimestamp: ms, MaxTimestamp: ms,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(vals)), Records: recs,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32c))
	return out, nil
}
