package shardwriter

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"

	"github.com/slsrelay/slsrelay/wal"
)

// Limits of one LogGroup, from SLS's documentation:
//
//   - "The maximum length of a log group is 5 MB"
//     (https://www.alibabacloud.com/help/en/log-service/latest/log-group);
//     a PutLogs request takes at most 10 MB of raw logs
//     (https://www.alibabacloud.com/help/en/log-service/latest/putlogs).
//     4 MiB of logs keeps a group clear of 5 MB with room for the topic,
//     source and tags that Bytes adds after the logs.
//   - The PutLogs reference long read "up to 3 MB log group data or 4,096
//     log entries at a time" (https://www.alibabacloud.com/help/doc-detail/29026.htm);
//     the current page only states the 10 MB, but the SDK's own producer
//     still sends at most 4096 logs per group by default
//     (producer.GetDefaultProducerConfig: MaxBatchCount 4096, capped at
//     40960). 4096 is the count every SLS version accepts.
const (
	lgDefaultMaxBytes = 4 << 20
	lgDefaultMaxLogs  = 4096
	// lgMaxBytes is the most MaxBytes may be: SLS's 5 MB per LogGroup,
	// less room for the topic and source (128 bytes each at most, data
	// model page https://www.alibabacloud.com/help/doc-detail/48871.htm)
	// and tags.
	lgMaxBytes = 5_000_000 - 64<<10
	// lgMaxLogs is the most MaxLogs may be: the SDK's producer caps its
	// MaxBatchCount at 40960 (producer/producer.go).
	lgMaxLogs = 40960
)

// LogGroupLimits bound one LogGroup built by a LogGroupBuilder.
type LogGroupLimits struct {
	// MaxBytes bounds the encoded logs of a group, in raw (uncompressed)
	// protobuf bytes; 0 means 4 MiB. SLS takes at most 5 MB per LogGroup:
	// keep MaxBytes below that by more than the topic, source and tags.
	MaxBytes int `yaml:"max_log_group_bytes"`
	// MaxLogs bounds the number of logs in a group; 0 means 4096, the most
	// the PutLogs documentation has always allowed.
	MaxLogs int `yaml:"max_log_group_logs"`
}

// LogTag is one LogGroup tag (shown in SLS as __tag__:Key).
type LogTag struct{ Key, Value string }

// LogGroupBuilder encodes an SLS LogGroup (the protobuf message
// sls.LogGroup of aliyun-log-go-sdk) straight into a reused buffer, for
// Client.PostRawLogWithCompressType. It avoids building an sls.Log and
// sls.LogContent per log and marshalling them: converted logs are copied
// once, into their final encoding.
//
// Logs are appended (by a Converter) until the group is Full; Bytes then
// returns the LogGroup and Reset starts the next one, keeping the buffer.
// A LogGroupBuilder is not safe for concurrent use.
type LogGroupBuilder struct {
	lim  LogGroupLimits
	buf  []byte // the encoded Logs fields (LogGroup field 1), in order
	logs int

	// starts[i] is where log i begins in buf, and refs[i] the record it
	// came from: a group SLS refuses can be split and its refused logs
	// traced back to their records (sendsplit.go).
	starts []int
	refs   []logRef
	// minSec and maxSec bound the Time of the logs (an empty group has
	// minSec > maxSec): the send-time check (sendtime.go) rewrites
	// nothing when they are inside SLS's window.
	minSec, maxSec uint32
	spare          []byte // the other buffer of retime

	// attr is the attribution of the group's logs, set by a Converter
	// with one (attributed): then its source replaces the one passed to
	// Bytes, and its tags follow the ones passed (attribution.go). Reset
	// keeps it: the logs that follow a flush in the middle of an entry
	// are of the same producer.
	attr       attribution
	attributed bool
}

// logRef names the record a log came from: its entry and offset delta as
// the WAL numbers the entry's records, by their place in the batch (0, 1,
// …). Not the offset delta field a v2 record carries: Kafka wants those
// to count from 0 too, but the front end does not decompress a batch to
// check them, and a repeated one would name another record
// (TestWriterDeadLettersRecordByPlace).
type logRef struct {
	entry       *wal.Entry
	offsetDelta int32
}

// NewLogGroupBuilder returns an empty builder bounded by l (zero fields take
// their defaults).
func NewLogGroupBuilder(l LogGroupLimits) *LogGroupBuilder {
	if l.MaxBytes <= 0 {
		l.MaxBytes = lgDefaultMaxBytes
	}
	if l.MaxLogs <= 0 {
		l.MaxLogs = lgDefaultMaxLogs
	}
	// Larger groups would be refused whole.
	l.MaxBytes, l.MaxLogs = min(l.MaxBytes, lgMaxBytes), min(l.MaxLogs, lgMaxLogs)
	return &LogGroupBuilder{lim: l, minSec: math.MaxUint32}
}

// Reset empties the group, keeping its buffer for the next one.
func (g *LogGroupBuilder) Reset() {
	g.buf = g.buf[:0]
	g.logs = 0
	g.starts = g.starts[:0]
	clear(g.refs) // let delivered entries go
	g.refs = g.refs[:0]
	g.minSec, g.maxSec = math.MaxUint32, 0
}

// Logs returns how many logs the group holds.
func (g *LogGroupBuilder) Logs() int { return g.logs }

// Size returns the encoded size of the group's logs in bytes: what Bytes
// returns, without the topic, source and tags.
func (g *LogGroupBuilder) Size() int { return len(g.buf) }

// Full reports whether the group has reached one of its limits: flush it
// before adding more. A group below its limits may still be too full for a
// given log; Converter checks each log before appending it.
func (g *LogGroupBuilder) Full() bool {
	return g.logs >= g.lim.MaxLogs || len(g.buf) >= g.lim.MaxBytes
}

// Bytes returns the encoded LogGroup: its logs, then topic and source (when
// not empty) and tags. When the group's logs have an attribution (their
// Converter has one, see attribution.go), its source replaces source and
// its tags follow tags. The slice shares the builder's buffer: it is valid
// until the next Reset or the next log appended, and may be passed to
// PostRawLogWithCompressType, which does not keep it. Bytes may be called
// again with other metadata.
func (g *LogGroupBuilder) Bytes(topic, source string, tags []LogTag) []byte {
	// The metadata goes after the logs: protobuf fields may come in any
	// order, and appending it past len(g.buf) leaves the logs untouched.
	return g.appendMeta(g.buf, topic, source, tags)
}

// appendRange appends to dst a LogGroup of logs i to j-1 of g, with the
// metadata of Bytes, and returns it.
func (g *LogGroupBuilder) appendRange(dst []byte, i, j int, topic, source string, tags []LogTag) []byte {
	end := len(g.buf)
	if j < g.logs {
		end = g.starts[j]
	}
	return g.appendMeta(append(dst, g.buf[g.starts[i]:end]...), topic, source, tags)
}

// appendMeta appends the LogGroup's topic, source and tags to b: those
// given, with the group's attribution, if any, as Bytes says.
func (g *LogGroupBuilder) appendMeta(b []byte, topic, source string, tags []LogTag) []byte {
	if g.attributed {
		source = g.attr.source
	}
	if topic != "" {
		b = lgAppendString(b, lgTagTopic, topic)
	}
	if source != "" {
		b = lgAppendString(b, lgTagSource, source)
	}
	for _, t := range tags {
		b = lgAppendTag(b, t.Key, t.Value)
	}
	if g.attributed {
		b = g.attr.appendTags(b)
	}
	return b
}

// lgAppendTag appends one LogGroup.LogTags field.
func lgAppendTag(b []byte, key, value string) []byte {
	b = append(b, lgTagLogTags)
	b = binary.AppendUvarint(b, uint64(lgStringSize(len(key))+lgStringSize(len(value))))
	b = lgAppendString(b, lgTagKey, key)
	return lgAppendString(b, lgTagValue, value)
}

// attribute makes at the attribution of the logs appended next. The group
// must be empty, or hold logs of the same attribution.
func (g *LogGroupBuilder) attribute(at attribution) {
	g.attr, g.attributed = at, true
}

// attributedTo reports whether logs of at may join the group: it is
// empty, or its logs have that attribution.
func (g *LogGroupBuilder) attributedTo(at attribution) bool {
	return g.logs == 0 || g.attributed && g.attr == at
}

// cvField is one field (sls.LogContent) of a log being converted. Both
// slices point into the record or the Converter's scratch buffer.
type cvField struct{ key, val []byte }

// fits reports whether a log of framed bytes (see lgLogSize) may join the
// group without passing a limit. An empty group takes any log: one record
// larger than MaxBytes goes alone, and SLS decides.
func (g *LogGroupBuilder) fits(framed int) bool {
	return g.logs == 0 || g.logs < g.lim.MaxLogs && len(g.buf)+framed <= g.lim.MaxBytes
}

// truncate drops the logs appended after the group had size bytes and logs
// logs.
func (g *LogGroupBuilder) truncate(size, logs int) {
	g.buf = g.buf[:size]
	g.logs = logs
	g.starts = g.starts[:logs]
	clear(g.refs[logs:])
	g.refs = g.refs[:logs]
	// minSec and maxSec stay: a wider bound only costs a scan.
}

// appendLog appends one log of record ref: Time sec, TimeNs ns and fields
// as its Contents. body must be lgLogBodySize(sec, fields).
func (g *LogGroupBuilder) appendLog(body int, sec, ns uint32, fields []cvField, ref logRef) {
	g.starts = append(g.starts, len(g.buf))
	g.refs = append(g.refs, ref)
	g.minSec, g.maxSec = min(g.minSec, sec), max(g.maxSec, sec)
	b := slices.Grow(g.buf, 1+lgVarintLen(uint64(body))+body)
	b = append(b, lgTagLogs)
	b = binary.AppendUvarint(b, uint64(body))
	b = append(b, lgTagTime)
	b = binary.AppendUvarint(b, uint64(sec))
	for _, f := range fields {
		b = append(b, lgTagContents)
		b = binary.AppendUvarint(b, uint64(lgStringSize(len(f.key))+lgStringSize(len(f.val))))
		b = lgAppendBytes(b, lgTagKey, f.key)
		b = lgAppendBytes(b, lgTagValue, f.val)
	}
	b = append(b, lgTagTimeNs)
	b = binary.LittleEndian.AppendUint32(b, ns)
	g.buf = b
	g.logs++
}

// Protobuf tags (field number << 3 | wire type) of log.proto in
// aliyun-log-go-sdk. Wire types: 0 varint, 2 length-delimited, 5 fixed32.
const (
	lgTagLogs     = 1<<3 | 2 // LogGroup.Logs
	lgTagTopic    = 3<<3 | 2 // LogGroup.Topic
	lgTagSource   = 4<<3 | 2 // LogGroup.Source
	lgTagLogTags  = 6<<3 | 2 // LogGroup.LogTags
	lgTagTime     = 1 << 3   // Log.Time (wire type 0)
	lgTagContents = 2<<3 | 2 // Log.Contents
	lgTagTimeNs   = 4<<3 | 5 // Log.TimeNs
	lgTagKey      = 1<<3 | 2 // LogContent.Key, LogTag.Key
	lgTagValue    = 2<<3 | 2 // LogContent.Value, LogTag.Value
)

// lgLogBodySize returns the encoded size of a Log message, without its own
// tag and length.
func lgLogBodySize(sec uint32, fields []cvField) int {
	n := 1 + lgVarintLen(uint64(sec)) + 1 + 4 // Time, TimeNs
	for _, f := range fields {
		c := lgStringSize(len(f.key)) + lgStringSize(len(f.val))
		n += 1 + lgVarintLen(uint64(c)) + c
	}
	return n
}

// lgLogSize returns what a Log of body bytes adds to the group.
func lgLogSize(body int) int { return 1 + lgVarintLen(uint64(body)) + body }

// lgStringSize returns the encoded size of a string field of n bytes.
func lgStringSize(n int) int { return 1 + lgVarintLen(uint64(n)) + n }

// lgVarintLen returns the length of x as a protobuf varint.
func lgVarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func lgAppendBytes(b []byte, tag byte, s []byte) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func lgAppendString(b []byte, tag byte, s string) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
