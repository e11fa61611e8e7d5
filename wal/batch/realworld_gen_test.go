//go:build batchgen

package batch

// This file regenerates testdata/realworld: partition data exactly as real
// producers send it. It needs kfake and sarama, so it only builds with
//
//	go test -tags batchgen -run TestGenerateRealWorld ./wal/batch/
//
// franz-go's kgo producer writes v2 batches (to kfake, which intercepts the
// Produce requests); IBM sarama (the library elastic's Beats fork) writes v0/v1
// MessageSets to a tiny fake broker below, at versions 0.8.2 (Produce v0,
// magic 0) and 0.10.0 (Produce v2, magic 1).

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestGenerateRealWorld(t *testing.T) {
	for _, c := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	} {
		data, version := kgoBatch(t, c.codec)
		writeRealWorld(t, fmt.Sprintf("kgo-produce-v%d-magic2-%s.bin", version, c.name), data)
	}
	for _, c := range []struct {
		name  string
		codec sarama.CompressionCodec
	}{
		{"none", sarama.CompressionNone},
		{"gzip", sarama.CompressionGZIP},
		{"snappy", sarama.CompressionSnappy},
		{"lz4", sarama.CompressionLZ4},
	} {
		for _, v := range []sarama.KafkaVersion{sarama.V0_8_2_0, sarama.V0_10_0_0} {
			if c.codec == sarama.CompressionLZ4 && v == sarama.V0_8_2_0 {
				continue // sarama refuses lz4 before 0.10
			}
			data, version := saramaSet(t, v, c.codec)
			writeRealWorld(t, fmt.Sprintf("sarama-produce-v%d-magic%d-%s.bin", version, data[magicOffset], c.name), data)
		}
	}
}

func writeRealWorld(t *testing.T, name string, data []byte) {
	if err := os.WriteFile(filepath.Join("testdata", "realworld", name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", name, len(data))
}

func kgoBatch(t *testing.T, codec kgo.CompressionCodec) ([]byte, int16) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var (
		mu      sync.Mutex
		data    []byte
		version int16
	)
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		mu.Lock()
		defer mu.Unlock()
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				data, version = append([]byte{}, rp.Records...), req.Version
			}
		}
		return nil, nil, false
	})
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.DefaultProduceTopic("logs"),
		kgo.ProducerBatchCompression(codec),
		kgo.ManualFlushing(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range realWorldRecords {
		k, v, ts := realWorldRecord(i)
		r := &kgo.Record{Key: k, Value: v, Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "data-parse-format", Value: []byte("json")}}}
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return data, version
}

func saramaSet(t *testing.T, v sarama.KafkaVersion, codec sarama.CompressionCodec) ([]byte, int16) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *kmsg.ProduceRequest, 1)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFake(conn, ln.Addr().(*net.TCPAddr), got)
		}
	}()

	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ApiVersionsRequest = false // like the Beats fork: never sent
	cfg.Producer.Compression = codec
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Flush.Messages = realWorldRecords
	cfg.Producer.Flush.Frequency = time.Minute
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer([]string{ln.Addr().String()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for i := range realWorldRecords {
		k, val, ts := realWorldRecord(i)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: "logs", Key: sarama.ByteEncoder(k), Value: sarama.ByteEncoder(val), Timestamp: ts})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	req := <-got
	return req.Topics[0].Partitions[0].Records, req.Version
}

// serveFake answers Metadata (one topic "logs", one partition led by this
// broker), ApiVersions and Produce, handing each Produce request to got.
func serveFake(conn net.Conn, addr *net.TCPAddr, got chan<- *kmsg.ProduceRequest) {
	defer conn.Close()
	for {
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return
		}
		buf := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(conn, buf); err != nil {
			return
		}
		key, version := int16(binary.BigEndian.Uint16(buf)), int16(binary.BigEndian.Uint16(buf[2:]))
		corr := binary.BigEndian.Uint32(buf[4:])
		idLen := int16(binary.BigEndian.Uint16(buf[8:]))
		body := buf[10+max(int(idLen), 0):]
		req := kmsg.RequestForKey(key)
		if req == nil {
			fmt.Fprintf(os.Stderr, "fake broker: unknown request key %d\n", key)
			return
		}
		req.SetVersion(version)
		if err := req.ReadFrom(body); err != nil {
			fmt.Fprintf(os.Stderr, "fake broker: key %d v%d: %v\n", key, version, err)
			return
		}
		var resp kmsg.Response
		switch r := req.(type) {
		case *kmsg.ApiVersionsRequest:
			rs := r.ResponseKind().(*kmsg.ApiVersionsResponse)
			rs.ApiKeys = []kmsg.ApiVersionsResponseApiKey{
				{ApiKey: 0, MinVersion: 0, MaxVersion: 2},
				{ApiKey: 3, MinVersion: 0, MaxVersion: 1},
				{ApiKey: 18, MinVersion: 0, MaxVersion: 0},
			}
			resp = rs
		case *kmsg.MetadataRequest:
			rs := r.ResponseKind().(*kmsg.MetadataResponse)
			rs.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: addr.IP.String(), Port: int32(addr.Port)}}
			rs.ControllerID = 1
			topic := "logs"
			rs.Topics = []kmsg.MetadataResponseTopic{{Topic: &topic, Partitions: []kmsg.MetadataResponseTopicPartition{
				{Partition: 0, Leader: 1, Replicas: []int32{1}, ISR: []int32{1}},
			}}}
			resp = rs
		case *kmsg.ProduceRequest:
			rs := r.ResponseKind().(*kmsg.ProduceResponse)
			for _, rt := range r.Topics {
				t := kmsg.ProduceResponseTopic{Topic: rt.Topic}
				for _, rp := range rt.Partitions {
					t.Partitions = append(t.Partitions, kmsg.ProduceResponseTopicPartition{Partition: rp.Partition})
				}
				rs.Topics = append(rs.Topics, t)
			}
			resp = rs
			select {
			case got <- r:
			default:
			}
		default:
			fmt.Fprintf(os.Stderr, "fake broker: unhandled key %d v%d\n", key, version)
			return
		}
		out := binary.BigEndian.AppendUint32(make([]byte, 4), corr)
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}
