//go:build unix

package shardwriter

import (
	"fmt"
	"testing"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// What attribution costs. A LogGroup holds the logs of one producer, so
// entries of producers interleaved in a stream end up in more, smaller
// LogGroups than before (one per run of one producer's entries), and each
// entry's attribution is computed. Compared, on the same logs:
//
//   - attribution=off: no attribution (ConvertOptions without one; for the
//     writer, source relay_host and no tags: one attribution for all, the
//     grouping of before attribution existed);
//   - attribution=on: the defaults (the producer's IP, tag client_id);
//
// with producers=1 (every entry of one shipper) and producers=4 (the
// entries of 4 shippers round-robin, the worst interleaving).
//
//	go test -run '^$' -bench 'Attribution' -benchtime 3x ./shardwriter/ -args -writerbench.mb 40

// BenchmarkConvertAttribution converts 20 entries of 50 text records
// (1 KiB each) into LogGroups.
func BenchmarkConvertAttribution(b *testing.B) {
	recs := cvtTextRecords(1000)
	const perEntry = 50
	for _, producers := range []int{1, 4} {
		var entries []*wal.Entry
		var raw int64
		for i := 0; i < len(recs); i += perEntry {
			p := i / perEntry % producers
			entries = append(entries, &wal.Entry{Magic: 2, Codec: batchtest.Gzip.ID, Records: perEntry, ReceivedAt: cvtReceived,
				Producer: wbProducerIP(p) + ":53412", ClientID: fmt.Sprint("beats-", p),
				Data: batchtest.RecordBatch(b, recs[i:i+perEntry], batchtest.Gzip, nil)})
			for _, r := range recs[i : i+perEntry] {
				raw += int64(len(r.Value))
			}
		}
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("producers=%d/attribution=%s", producers, map[bool]string{false: "off", true: "on"}[on]), func(b *testing.B) {
				var o ConvertOptions
				if on {
					a, err := newAttributor("", nil)
					if err != nil {
						b.Fatal(err)
					}
					o.attrib = a
				}
				c := NewConverter(o)
				g := NewLogGroupBuilder(LogGroupLimits{})
				var out, groups int
				flush := func(g *LogGroupBuilder) error { out += len(g.Bytes("", "", nil)); groups++; return nil }
				b.SetBytes(raw)
				b.ReportAllocs()
				for b.Loop() {
					for _, e := range entries {
						if _, err := c.Convert(g, e, cvtNow, flush); err != nil {
							b.Fatal(err)
						}
					}
					_ = flush(g)
					g.Reset()
				}
				b.ReportMetric(float64(groups)/float64(b.N), "groups/op")
			})
		}
	}
}

// BenchmarkWriterAttribution is BenchmarkWriterVsSDKProducer's writer
// (gzip batches of 500 records, 2 streams) on batches of 1 or 4 shippers.
func BenchmarkWriterAttribution(b *testing.B) {
	in := wbPrepare(b, *wbMiB<<20)
	off := func(o *Options) { o.Source, o.Tags = SourceRelayHost, []string{} }
	for _, producers := range []int{1, 4} {
		b.Run(fmt.Sprintf("producers=%d/attribution=off", producers), func(b *testing.B) {
			wbRunWriterFrom(b, in, in.gzipped, 1, 2, producers, off)
		})
		b.Run(fmt.Sprintf("producers=%d/attribution=on", producers), func(b *testing.B) {
			wbRunWriterFrom(b, in, in.gzipped, 1, 2, producers, nil)
		})
	}
}

// BenchmarkAttributionOf is the cost attribution adds to every entry
// (beside the grouping): computing its source and tags.
func BenchmarkAttributionOf(b *testing.B) {
	a, err := newAttributor("", []string{TagClientID, TagSASLUser, TagClientSoftware})
	if err != nil {
		b.Fatal(err)
	}
	e := &wal.Entry{Producer: "10.0.0.7:53412", ClientID: "filebeat-prod-01", SASLUser: "shipper", ClientSoftware: "sarama/1.43.0"}
	g := NewLogGroupBuilder(LogGroupLimits{})
	b.ReportAllocs()
	for b.Loop() {
		if !g.attributedTo(a.of(e)) {
			b.Fatal("attribution differs")
		}
		g.attribute(a.of(e))
	}
}
