package targets

import (
	"context"
	"crypto/tls"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/slsrelay/slsrelay/bench/load"
	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sys/unix"
)

// The names the bench writes as.
const (
	Project    = "bench-project"
	Topic      = "bench-logs"
	AKID       = "bench-akid"
	Secret     = "bench-secret"
	Partitions = 4
)

// StandInConfig is the stand-in the e2e relay delivers to: one logstore
// with a shard per partition, SLS's quotas off (the writers are not paced
// either, unless asked), and nothing dropped from memory, so the loss check
// sees everything.
func StandInConfig() slsfake.Config {
	return slsfake.Config{
		Projects: []slsfake.ProjectConfig{{Name: Project, Logstores: []slsfake.LogstoreConfig{{Name: Topic, ShardCount: Partitions}}}},
		AccessKeys: []slsfake.AccessKeyConfig{{ID: AKID, Secret: Secret,
			Projects: map[string]slsfake.Permission{"*": {Read: true, Write: true}}}},
		MaxStoredBytes: -1,
		DefaultQuota:   &slsfake.Quota{},
	}
}

// ServerTLS makes (once per dir) a CA and a server certificate for
// 127.0.0.1/localhost, returning the server config and a client config
// trusting it.
func ServerTLS(dir string) (server, client *tls.Config, err error) {
	files, err := engine.EnsureSelfSigned(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		return nil, nil, err
	}
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		return nil, nil, err
	}
	client, err = kafkatest.ClientTLS(files.CA)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, client, err
}

// StartKfake starts franz-go's in-memory broker with the bench topic
// (TLS and SASL PLAIN when serverTLS is set).
func StartKfake(serverTLS *tls.Config) (*kfake.Cluster, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(Partitions, Topic), kfake.Ports(0)}
	if serverTLS != nil {
		opts = append(opts, kfake.TLS(serverTLS), kfake.EnableSASL(), kfake.Superuser("PLAIN", Project, AKID+"#"+Secret))
	}
	return kfake.NewCluster(opts...)
}

// RunFile writes the bytes the fleet would send — batches built like the
// profile's (same sizes, same compression) — sequentially to a file in
// dir, fdatasync'ing every MiB, until ctx ends: the disk's limit. Each
// sync acknowledges the records written before it; st counts them as a
// fleet's acks (ack latency = the sync's duration plus its write).
func RunFile(ctx context.Context, dir string, cfg load.Config, st *load.Stats) error {
	if cfg.Sizes.Median == 0 {
		cfg.Sizes = load.DefaultSizes
	}
	type batch struct {
		wire    []byte
		records int
		raw     int64
	}
	r := rand.New(rand.NewPCG(7, 9))
	max := cfg.Profile.BatchMaxBytes
	if max <= 0 {
		max = 1_000_000
	}
	var batches []batch
	for range 8 {
		var vals [][]byte
		var raw int64
		for raw < int64(max)*9/10 && len(vals) < 2048 {
			size := cfg.Sizes.Draw(r)
			v := load.Value(nil, 0, time.Now(), size, r)
			vals = append(vals, v)
			raw += int64(len(v))
		}
		wire, err := load.EncodeBatch(vals, time.Now(), cfg.Profile.Compression)
		if err != nil {
			return err
		}
		batches = append(batches, batch{wire, len(vals), raw})
	}
	path := filepath.Join(dir, "plain-file.bin")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	var written, unsynced int64
	var recs int
	var raw int64
	start := time.Now()
	sync := func() error {
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return err
		}
		lat := time.Since(start)
		for range recs {
			st.Lat.Record(lat)
		}
		st.Acked.Add(int64(recs))
		st.AckedBytes.Add(raw)
		recs, raw, unsynced = 0, 0, 0
		start = time.Now()
		return nil
	}
	defer func() {
		if recs > 0 {
			sync()
		}
	}()
	// At least one round of the batches, however short the run.
	for i := 0; i < len(batches) || ctx.Err() == nil; i++ {
		b := batches[i%len(batches)]
		if _, err := f.Write(b.wire); err != nil {
			return err
		}
		st.Sent.Add(int64(b.records))
		st.WireBytes.Add(int64(len(b.wire)))
		st.Requests.Add(1)
		written += int64(len(b.wire))
		unsynced += int64(len(b.wire))
		recs += b.records
		raw += b.raw
		if unsynced < 1<<20 {
			continue
		}
		if err := sync(); err != nil {
			return err
		}
		if written > 2<<30 { // bound the file: start over
			if _, err := f.Seek(0, 0); err != nil {
				return err
			}
			if err := f.Truncate(0); err != nil {
				return err
			}
			written = 0
		}
	}
	return nil
}
