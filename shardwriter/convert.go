package shardwriter

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// ErrUndecodable is wrapped by Convert's error when a stored batch cannot be
// decoded (corrupt framing, checksum, compression or records). Retrying
// cannot help: the writer dead-letters the entry.
var ErrUndecodable = errors.New("shardwriter: stored batch cannot be decoded")

// Defaults of ConvertOptions. The time window is what SLS accepts for a
// log's __time__: at most 7 days old and 15 minutes ahead.
const (
	cvDefaultMaxAge    = 7 * 24 * time.Hour
	cvDefaultMaxFuture = 15 * time.Minute
)

// errNoFlush is Convert's error when g fills up and flush is nil.
var errNoFlush = errors.New("shardwriter: LogGroup full and no flush function")

// cvContentKey is the field a record value becomes when not expanded, as on
// SLS's own Kafka endpoint.
var cvContentKey = []byte("content")

// cvParseFormatHeader is the record header that asks for JSON expansion
// (value "json") of one record; it is never a field itself.
const cvParseFormatHeader = "data-parse-format"

// ConvertOptions tune a Converter. The zero value converts as SLS's Kafka
// endpoint does.
type ConvertOptions struct {
	// KeyField, if not empty, names the field a record's key becomes (when
	// the key is not null). By default the key is dropped, as SLS's own
	// Kafka endpoint drops it.
	KeyField string `yaml:"key_field"`
	// HeadersAsFields makes each record header a field named
	// HeaderPrefix+key (a null value becomes ""). The header
	// data-parse-format is never a field, and neither is a header whose
	// name would be empty. By default headers are dropped.
	HeadersAsFields bool   `yaml:"headers_as_fields"`
	HeaderPrefix    string `yaml:"header_prefix"`
	// MaxDecompressedBytes bounds the decompressed size of one batch; 0
	// means 64 MiB. A batch beyond it is undecodable.
	MaxDecompressedBytes int `yaml:"-"`
	// MaxAge and MaxFuture bound the record timestamps used as a log's
	// time: one older than now-MaxAge or later than now+MaxFuture is
	// replaced by the entry's receive time. 0 means 7×24h and 15 min,
	// the window SLS accepts.
	MaxAge, MaxFuture time.Duration `yaml:"-"`
	// StrictKeys enforces SLS's documented key syntax (ASCII letters,
	// digits, underscore; not starting with a digit) by renaming other
	// keys; by default only keys SLS surely refuses are renamed (see
	// sanitize.go).
	StrictKeys bool `yaml:"strict_keys"`

	// attrib gives each entry's logs their source and tags; Options sets
	// it from Options.Source and Options.Tags. nil: no attribution (the
	// caller of Bytes gives source and tags).
	attrib *attributor
}

// Converter turns WAL entries (stored Kafka batches) into SLS logs,
// following the contract with shippers in DESIGN.md:
//
//   - each record is one log;
//   - its value is field content ("" when null), or, in JSON mode — the
//     entry's JSON flag (topic "<logstore>.json") or the record header
//     data-parse-format: json (both compared case-insensitively) — one field
//     per top-level key of a JSON object (see jsonfields.go); a value that
//     is not such an object stays content;
//   - then, if configured, the key field and the header fields, in that
//     order;
//   - keys and values SLS would refuse are fixed (sanitize.go), so that
//     every log of a LogGroup is valid;
//   - its time is the record timestamp (seconds in Time, the rest in
//     TimeNs); a missing timestamp, or one outside [now-MaxAge,
//     now+MaxFuture], is replaced by the entry's ReceivedAt, and should that
//     be outside the window too (an entry held back more than MaxAge) by
//     now: SLS does not take logs outside the window (DESIGN.md, SLS
//     limits), and PutLogs checks every log of a request.
//
// A Converter keeps its decoder's decompressors and buffers, so converting
// does not allocate in the steady state. It is not safe for concurrent use:
// give each writer goroutine its own.
type Converter struct {
	opt     ConvertOptions
	key     []byte // opt.KeyField
	prefix  []byte // opt.HeaderPrefix
	dec     batch.Decoder
	json    jsExpander
	fields  []cvField    // the fields of the record being converted
	scratch []byte       // unescaped JSON strings, compacted values, header names, fixes
	fixes   [svKinds]int // fixes made by sanitize, by kind (for tests)
}

// NewConverter returns a Converter with options o (zero fields take their
// defaults).
func NewConverter(o ConvertOptions) *Converter {
	if o.MaxDecompressedBytes <= 0 {
		o.MaxDecompressedBytes = batch.DefaultMaxDecompressedBytes
	}
	if o.MaxAge <= 0 {
		o.MaxAge = cvDefaultMaxAge
	}
	if o.MaxFuture <= 0 {
		o.MaxFuture = cvDefaultMaxFuture
	}
	c := &Converter{opt: o, prefix: []byte(o.HeaderPrefix)}
	if o.KeyField != "" {
		c.key = []byte(o.KeyField)
	}
	return c
}

// Convert decodes e and appends one log per record to g, in record order.
// Before a log that would take g past one of its limits, and before the
// first log of e if g holds logs of another attribution (attribution.go:
// another producer address, client.id, ...), Convert calls flush(g), which
// must send the LogGroup g holds; Convert then Resets g (flush may Reset it
// too) and goes on. One entry may thus end up in several
// LogGroups, and a LogGroup may hold logs of several entries: g may hold
// logs when Convert is called, and keeps this entry's last logs when it
// returns. now is the reference for the time window. flush may be nil when
// g has room for the whole entry; should it not, Convert fails.
//
// Convert returns the number of logs it appended. On error, the logs of e
// still in g are removed again (g holds what it held before the call, or
// nothing if a flush happened), and the count is of the logs of e already
// handed to a successful flush — sent, though the entry is not complete. An
// error from flush is returned as it is; a batch that cannot be decoded
// gives an error wrapping ErrUndecodable.
func (c *Converter) Convert(g *LogGroupBuilder, e *wal.Entry, now time.Time, flush func(*LogGroupBuilder) error) (int, error) {
	clock := c.clock(now, e.ReceivedAt)
	if c.opt.attrib != nil {
		at := c.opt.attrib.of(e)
		if !g.attributedTo(at) {
			if flush == nil {
				return 0, errNoFlush
			}
			if err := flush(g); err != nil {
				return 0, err
			}
			g.Reset()
		}
		g.attribute(at)
	}
	markSize, markLogs := g.Size(), g.Logs() // to undo this entry's logs
	var flushed, appended int
	var flushErr error
	opt := batch.DecodeOptions{MaxDecompressedBytes: c.opt.MaxDecompressedBytes}
	var place int32 // the record's offset delta as the WAL numbers them (logRef)
	err := c.dec.Decode(e.Magic, e.Data, opt, func(r *batch.Record) error {
		fields := c.recordFields(r, e.JSON)
		sec, ns := clock.logTime(r.Timestamp)
		// A log larger than the group's MaxBytes goes alone, but never
		// larger than a group SLS takes.
		body := c.sanitize(fields, sec, max(g.lim.MaxBytes, lgDefaultMaxBytes))
		if !g.fits(lgLogSize(body)) {
			if flush == nil {
				flushErr = errNoFlush
				return flushErr
			}
			if flushErr = flush(g); flushErr != nil {
				return flushErr
			}
			g.Reset()
			flushed += appended
			appended, markSize, markLogs = 0, 0, 0
		}
		g.appendLog(body, sec, ns, fields, logRef{e, place})
		place++
		appended++
		return nil
	})
	if err != nil {
		g.truncate(markSize, markLogs)
		if flushErr != nil {
			return flushed, flushErr
		}
		return flushed, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	return flushed + appended, nil
}

// recordFields returns the fields of r's log. They point into r and
// c.scratch, and are valid until the next call.
func (c *Converter) recordFields(r *batch.Record, jsonMode bool) []cvField {
	fs, scratch := c.fields[:0], c.scratch[:0]
	if !jsonMode {
		for _, h := range r.Headers {
			if cvIsParseFormat(h.Key) && bytes.EqualFold(h.Value, []byte("json")) {
				jsonMode = true
				break
			}
		}
	}
	expanded := false
	if jsonMode {
		fs, scratch, expanded = c.json.expand(fs, scratch, r.Value)
	}
	if !expanded {
		fs = append(fs, cvField{cvContentKey, r.Value})
	}
	if c.key != nil && r.Key != nil {
		fs = append(fs, cvField{c.key, r.Key})
	}
	if c.opt.HeadersAsFields {
		for _, h := range r.Headers {
			if cvIsParseFormat(h.Key) || len(c.prefix)+len(h.Key) == 0 {
				continue
			}
			// Copied into scratch: the prefixed name must be contiguous.
			// Slices taken earlier stay valid if scratch moves, since an
			// append never overwrites what they see.
			n := len(scratch)
			scratch = append(append(scratch, c.prefix...), h.Key...)
			fs = append(fs, cvField{scratch[n:], h.Value})
		}
	}
	c.fields, c.scratch = fs, scratch
	return fs
}

func cvIsParseFormat(key string) bool {
	return strings.EqualFold(key, cvParseFormatHeader)
}

// cvClock decides the time of the logs of one entry.
type cvClock struct {
	minMs, maxMs int64  // accepted record timestamps, in ms
	sec, ns      uint32 // the fallback time
}

func (c *Converter) clock(now time.Time, receivedAt int64) cvClock {
	nowNs := now.UnixNano()
	minNs, maxNs := nowNs-int64(c.opt.MaxAge), nowNs+int64(c.opt.MaxFuture)
	fallback := receivedAt
	if fallback < minNs || fallback > maxNs {
		fallback = nowNs
	}
	return cvClock{
		// Rounded inward, so that a timestamp in the window in ms is in
		// it in ns too.
		minMs: cvCeilDiv(minNs, 1e6),
		maxMs: cvFloorDiv(maxNs, 1e6),
		sec:   uint32(fallback / 1e9),
		ns:    uint32(fallback % 1e9),
	}
}

// logTime returns Time and TimeNs for a record timestamp in ms (-1 when
// the record has none).
func (k cvClock) logTime(ms int64) (sec, ns uint32) {
	if ms < 0 || ms < k.minMs || ms > k.maxMs {
		return k.sec, k.ns
	}
	return uint32(ms / 1000), uint32(ms%1000) * 1e6
}

func cvFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func cvCeilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}
