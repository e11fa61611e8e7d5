package shardwriter

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Test fixtures are real Kafka encodings: kmsg types for the framing, the
// real compressors for the payloads; only lengths and CRCs, which kmsg
// leaves to the caller, are filled in here.

// cvtRec is a record as a test produces it.
type cvtRec struct {
	key, value []byte
	headers    []kmsg.Header
	ts         int64 // ms since the epoch
}

// cvtCodec is one way to compress a batch payload.
type cvtCodec struct {
	name   string
	codec  int8
	encode func(tb testing.TB, raw []byte) []byte
}

var cvtCodecs = []cvtCodec{
	{"none", 0, func(_ testing.TB, raw []byte) []byte { return raw }},
	{"gzip", 1, cvtGzip},
	{"snappy", 2, func(_ testing.TB, raw []byte) []byte { return snappy.Encode(nil, raw) }},
	{"snappy-xerial", 2, cvtXerial},
	{"lz4", 3, cvtLZ4},
	{"zstd", 4, cvtZstd},
}

func cvtGzip(tb testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(raw); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func cvtLZ4(tb testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if _, err := w.Write(raw); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func cvtZstd(tb testing.TB, raw []byte) []byte {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(raw, nil)
}

// cvtXerial frames raw as snappy-java's SnappyOutputStream, in 100-byte
// blocks so that tests cross block boundaries.
func cvtXerial(_ testing.TB, raw []byte) []byte {
	out := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}
	out = binary.BigEndian.AppendUint32(out, 1) // version
	out = binary.BigEndian.AppendUint32(out, 1) // compatible version
	for len(raw) > 0 {
		n := min(100, len(raw))
		enc := snappy.Encode(nil, raw[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(enc)))
		out = append(out, enc...)
		raw = raw[n:]
	}
	return out
}

var cvtCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// cvtV2Batch builds a RecordBatch (magic 2) of recs. mod, if not nil, may
// change header fields before the length and CRC are computed.
func cvtV2Batch(tb testing.TB, recs []cvtRec, c cvtCodec, mod func(*kmsg.RecordBatch)) []byte {
	first, maxTS := int64(-1), int64(-1)
	if len(recs) > 0 {
		first = recs[0].ts
		for _, r := range recs {
			maxTS = max(maxTS, r.ts)
		}
	}
	var raw []byte
	for i, r := range recs {
		kr := kmsg.Record{
			TimestampDelta64: r.ts - first,
			OffsetDelta:      int32(i),
			Key:              r.key,
			Value:            r.value,
			Headers:          r.headers,
		}
		body := kr.AppendTo(nil) // Length 0 takes one byte
		kr.Length = int32(len(body) - 1)
		raw = kr.AppendTo(raw)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(c.codec),
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              c.encode(tb, raw),
	}
	if mod != nil {
		mod(&b)
	}
	return cvtFinishV2(b.AppendTo(nil))
}

// cvtFinishV2 fills in the length and CRC of an encoded RecordBatch.
func cvtFinishV2(b []byte) []byte {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], cvtCastagnoli))
	return b
}

// cvtMessage encodes one v0/v1 message with its size and CRC.
func cvtMessage(magic int8, offset int64, attrs int8, ts int64, key, value []byte) []byte {
	var b []byte
	if magic == 0 {
		m := kmsg.MessageV0{Offset: offset, Magic: 0, Attributes: attrs, Key: key, Value: value}
		b = m.AppendTo(nil)
	} else {
		m := kmsg.MessageV1{Offset: offset, Magic: 1, Attributes: attrs, Timestamp: ts, Key: key, Value: value}
		b = m.AppendTo(nil)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
	return b
}

// cvtMessageSet builds a MessageSet of recs (headers are not part of the
// format): plain messages for codec none, otherwise one wrapper holding
// them compressed, with wrapperAttrs or-ed into its attributes.
func cvtMessageSet(tb testing.TB, magic int8, recs []cvtRec, c cvtCodec, wrapperAttrs int8) []byte {
	var inner []byte
	maxTS := int64(-1)
	for i, r := range recs {
		inner = append(inner, cvtMessage(magic, int64(i), 0, r.ts, r.key, r.value)...)
		maxTS = max(maxTS, r.ts)
	}
	if c.codec == 0 {
		return inner
	}
	return cvtMessage(magic, int64(len(recs)-1), c.codec|wrapperAttrs, maxTS, nil, c.encode(tb, inner))
}

// cvtFixCRCs returns a copy of data with the CRC of every top-level batch or
// message whose framing holds recomputed, so that fuzzed bytes get past the
// checksums.
func cvtFixCRCs(data []byte) []byte {
	data = append([]byte{}, data...)
	for b := data; len(b) > 16; {
		size := 12 + int(binary.BigEndian.Uint32(b[8:]))
		if size < 12 || size > len(b) {
			break
		}
		switch b[16] {
		case 2:
			if size >= 61 {
				binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:size], cvtCastagnoli))
			}
		case 0, 1:
			if size >= 26 {
				binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:size]))
			}
		}
		b = b[size:]
	}
	return data
}

// cvtLog is a log as read back through the SDK's protobuf types.
type cvtLog struct {
	Time, TimeNs uint32
	Contents     [][2]string
}

// cvtGroup is a LogGroup as read back.
type cvtGroup struct {
	Logs          []cvtLog
	Topic, Source string
	Tags          [][2]string
}

// cvtParse decodes raw with the SDK's generated code, as SLS would.
func cvtParse(tb testing.TB, raw []byte) cvtGroup {
	tb.Helper()
	var lg sls.LogGroup
	if err := proto.Unmarshal(raw, &lg); err != nil {
		tb.Fatalf("the SDK cannot unmarshal the LogGroup: %v", err)
	}
	g := cvtGroup{Topic: lg.GetTopic(), Source: lg.GetSource()}
	for _, l := range lg.Logs {
		if l.Time == nil || l.TimeNs == nil {
			tb.Fatalf("log without Time or TimeNs: %v", l)
		}
		cl := cvtLog{Time: l.GetTime(), TimeNs: l.GetTimeNs()}
		for _, c := range l.Contents {
			cl.Contents = append(cl.Contents, [2]string{c.GetKey(), c.GetValue()})
		}
		g.Logs = append(g.Logs, cl)
	}
	for _, t := range lg.LogTags {
		g.Tags = append(g.Tags, [2]string{t.GetKey(), t.GetValue()})
	}
	return g
}

// cvtRefJSON expands v with encoding/json, following the rules of
// jsonfields.go: the reference the scanner is checked against, and the
// "SDK way" of the benchmarks. Strings with invalid UTF-8 differ (encoding/json
// replaces the bytes); callers compare only valid UTF-8.
func cvtRefJSON(v []byte) ([][2]string, bool) {
	if !json.Valid(v) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out [][2]string
	var idx map[string]int
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		var val string
		switch raw[0] {
		case '"':
			if err := json.Unmarshal(raw, &val); err != nil {
				return nil, false
			}
		case 'n':
		case '{', '[':
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return nil, false
			}
			val = b.String()
		default:
			val = string(raw)
		}
		if key == "" {
			continue
		}
		if i, dup := idx[key]; dup {
			out[i][1] = val
			continue
		}
		if idx == nil {
			idx = map[string]int{}
		}
		idx[key] = len(out)
		out = append(out, [2]string{key, val})
	}
	if len(out) == 0 {
		return nil, false
	}
	return out, true
}

// cvtCollect is a flush function that keeps what it is given.
type cvtCollect struct {
	tb     testing.TB
	groups []cvtGroup
	sizes  []int // Size() at each flush
	fail   error
}

func (c *cvtCollect) flush(g *LogGroupBuilder) error {
	if c.fail != nil {
		return c.fail
	}
	c.sizes = append(c.sizes, g.Size())
	c.groups = append(c.groups, cvtParse(c.tb, g.Bytes("", "", nil)))
	g.Reset()
	return nil
}

// logs returns every log flushed, then those left in g.
func (c *cvtCollect) logs(g *LogGroupBuilder) []cvtLog {
	var out []cvtLog
	for _, grp := range c.groups {
		out = append(out, grp.Logs...)
	}
	return append(out, cvtParse(c.tb, g.Bytes("", "", nil)).Logs...)
}
