package engine

// Shared pieces of the real-client tests (clients_*_test.go): a relay that
// also exposes its CA file (for librdkafka) and can slow its appends down,
// the records every client sends, and the check of what reached the
// appender, decoded with batch.Decoder.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
)

// Codec numbers as wal.Entry.Codec holds them.
const (
	clCodecNone   int8 = 0
	clCodecGzip   int8 = 1
	clCodecSnappy int8 = 2
	clCodecLz4    int8 = 3
	clCodecZstd   int8 = 4
)

var clCodecNames = map[int8]string{clCodecNone: "none", clCodecGzip: "gzip", clCodecSnappy: "snappy", clCodecLz4: "lz4", clCodecZstd: "zstd"}

// clAllCodecs lists every codec; zstd needs Produce v7+ (Kafka 2.1).
var clAllCodecs = []int8{clCodecNone, clCodecGzip, clCodecSnappy, clCodecLz4, clCodecZstd}

// clTimeout bounds every client operation of these tests.
const clTimeout = 20 * time.Second

// clPassword is the SASL password of the test key.
const clPassword = testAKID + "#" + testSecret

// clRelay is a testRelay whose SASL_SSL certificate is signed by a CA
// whose file is known (kcat needs the path), optionally with appends that
// complete late and out of order.
//
// Many clients share one relay: each case tags its records (the value
// starts with the tag, see clMakeRecords) and checks only its own, which
// keeps the run short (a relay takes a second to close: gnet polls its
// shutdown every 500 ms, per plaintext listener) and has clients write the
// same streams concurrently.
type clRelay struct {
	*testRelay
	slow *clSlowAppender // nil unless started with startClSlowRelay

	mu      sync.Mutex
	decoded map[wal.StreamKey]*clStream
}

// clStream is what has been decoded of one stream so far.
type clStream struct {
	entries []clEntry
	next    int64 // offset after the last entry
}

// clEntry is one stored entry and its decoded records.
type clEntry struct {
	wal.Entry
	index int // in its stream
	recs  []clStored
	err   error // why the entry is bad (decoding, offsets)
}

// clStored is one record decoded from the appender's entries.
type clStored struct {
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []batch.Header
	Timestamp int64 // ms, -1 when none
}

// startClRelay is startRelay plus the CA file.
func startClRelay(t testing.TB) *clRelay {
	return startClRelayWith(t, nil)
}

// startClSlowRelay is startClRelay with an appender that completes
// every append after a random delay of up to maxDelay, from another
// goroutine: responses then complete out of order, and requests pile up in
// flight.
func startClSlowRelay(t testing.TB, maxDelay time.Duration) *clRelay {
	var slow *clSlowAppender
	r := startClRelayWith(t, func(m *MemoryAppender) Appender {
		slow = &clSlowAppender{m: m, maxDelay: maxDelay}
		return slow
	})
	r.slow = slow
	return r
}

func startClRelayWith(t testing.TB, wrap func(*MemoryAppender) Appender) *clRelay {
	t.Helper()
	r := startRelayAppender(t, wrap)
	return &clRelay{decoded: map[wal.StreamKey]*clStream{}, testRelay: r}
}

// clSlowAppender assigns offsets at once (so the order of appends is the
// order of offsets, as the Appender contract wants) but calls done later,
// after a random delay, from a timer goroutine. It records how many appends
// were outstanding at most.
type clSlowAppender struct {
	m           *MemoryAppender
	maxDelay    time.Duration
	outstanding atomic.Int64
	max         atomic.Int64
}

func (s *clSlowAppender) Append(k wal.StreamKey, e *wal.Entry, durable bool, done func(int64, error)) {
	clStoreMax(&s.max, s.outstanding.Add(1))
	s.m.Append(k, e, durable, func(base int64, err error) {
		time.AfterFunc(rand.N(s.maxDelay+1), func() {
			s.outstanding.Add(-1)
			done(base, err)
		})
	})
}

// clStoreMax raises m to n if n is larger.
func clStoreMax(m *atomic.Int64, n int64) {
	for old := m.Load(); n > old && !m.CompareAndSwap(old, n); old = m.Load() {
	}
}

// clListener is how a client reaches the relay.
type clListener struct {
	name string
	sasl bool // SASL PLAIN with the test project and key
	tls  bool
}

var (
	clPlaintext = clListener{name: "PLAINTEXT"}
	clSASLSSL   = clListener{name: "SASL_SSL", sasl: true, tls: true}
	clSASLText  = clListener{name: "SASL_PLAINTEXT", sasl: true}
)

func (r *clRelay) addr(l clListener) string {
	switch {
	case l.tls:
		return r.saslSSL
	case l.sasl:
		return r.saslText
	default:
		return r.plain
	}
}

// listener is how a client reaches r through l as the test project with
// password.
func (r *clRelay) listener(l clListener, password string) kafkatest.Listener {
	kl := kafkatest.Listener{Addr: r.addr(l), CAFile: r.caFile}
	if l.tls {
		kl.TLS = r.tls
	}
	if l.sasl {
		kl.User, kl.Password = testProject, password
	}
	return kl
}

// clSent is one record a test produces.
type clSent struct {
	Partition int32
	Key       []byte // nil: no key
	Value     []byte
	Headers   []batch.Header
	Time      time.Time // what the producer sets (ms precision), when it can
}

// clMakeRecords returns n records spread over partitions round-robin, each
// with a key, two headers, a compressible value starting with tag (see
// clTagOf) and its index, and a timestamp 1 ms apart starting at ts
// (rounded to milliseconds).
func clMakeRecords(tag string, n int, partitions int32, ts time.Time) []clSent {
	ts = ts.Truncate(time.Millisecond)
	recs := make([]clSent, n)
	for i := range recs {
		recs[i] = clSent{
			Partition: int32(i) % partitions,
			Key:       fmt.Appendf(nil, "key-%03d", i),
			Value:     fmt.Appendf(nil, "%s #%03d %s", tag, i, strings.Repeat("the quick brown fox jumps over the lazy dog ", 5)),
			Headers:   []batch.Header{{Key: "idx", Value: fmt.Appendf(nil, "%d", i)}, {Key: "case", Value: []byte(tag)}},
			Time:      ts.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return recs
}

// clTagOf returns the tag a record value starts with: everything before the
// first " #".
func clTagOf(value []byte) string {
	tag, _, _ := strings.Cut(string(value), " #")
	return tag
}

// stream decodes what is new in a stream and returns everything decoded so
// far. It checks that each entry holds as many records as it claims, that
// entries' offsets follow each other without gaps and that record offsets
// are the entry's base offset plus their index.
func (r *clRelay) stream(k wal.StreamKey) []clEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.decoded[k]
	if st == nil {
		st = &clStream{}
		r.decoded[k] = st
	}
	all := r.app.Entries(k)
	var d batch.Decoder
	for _, e := range all[len(st.entries):] {
		ce := clEntry{Entry: e, index: len(st.entries)}
		var errs []error
		if e.BaseOffset != st.next {
			errs = append(errs, fmt.Errorf("base offset %d, want %d (where the previous entry ends)", e.BaseOffset, st.next))
		}
		st.next = e.BaseOffset + int64(e.Records)
		err := d.Decode(e.Magic, e.Data, batch.DecodeOptions{}, func(rec *batch.Record) error {
			sr := clStored{
				Offset:    e.BaseOffset + int64(rec.OffsetDelta),
				Key:       bytes.Clone(rec.Key),
				Value:     bytes.Clone(rec.Value),
				Timestamp: rec.Timestamp,
			}
			for _, h := range rec.Headers {
				sr.Headers = append(sr.Headers, batch.Header{Key: h.Key, Value: bytes.Clone(h.Value)})
			}
			if want := e.BaseOffset + int64(len(ce.recs)); sr.Offset != want {
				errs = append(errs, fmt.Errorf("record %d has offset %d, want %d", len(ce.recs), sr.Offset, want))
			}
			ce.recs = append(ce.recs, sr)
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot decode: %w", err))
		} else if len(ce.recs) != int(e.Records) {
			errs = append(errs, fmt.Errorf("decoded %d records, the entry says %d", len(ce.recs), e.Records))
		}
		ce.err = errors.Join(errs...)
		st.entries = append(st.entries, ce)
	}
	return st.entries
}

// caseEntries returns the entries of a partition whose records carry tag.
// An entry mixing tags (two clients' records in one batch) is reported.
func (r *clRelay) caseEntries(t testing.TB, logstore string, partition int32, tag string) []clEntry {
	t.Helper()
	var out []clEntry
	for _, e := range r.stream(wal.StreamKey{Project: testProject, Logstore: logstore, Partition: partition}) {
		mine := 0
		for _, rec := range e.recs {
			if clTagOf(rec.Value) == tag {
				mine++
			}
		}
		if mine > 0 && mine != len(e.recs) {
			t.Errorf("%s[%d] entry %d: %d of its %d records are %s's, the rest another client's", logstore, partition, e.index, mine, len(e.recs), tag)
		}
		if mine > 0 {
			out = append(out, e)
		}
	}
	return out
}

// caseCount is how many records with tag the topic's partitions hold.
func (r *clRelay) caseCount(t testing.TB, logstore string, partitions int32, tag string) int {
	n := 0
	for p := int32(0); p < partitions; p++ {
		for _, e := range r.caseEntries(t, logstore, p, tag) {
			n += len(e.recs)
		}
	}
	return n
}

// waitCase waits until the topic holds at least n records with tag
// (acks=0 and asynchronous producers return before the relay stored them).
func (r *clRelay) waitCase(t testing.TB, logstore string, partitions int32, tag string, n int) {
	t.Helper()
	deadline := time.Now().Add(clTimeout)
	for {
		got := r.caseCount(t, logstore, partitions, tag)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %s holds %d records of %s, want %d", clTimeout, logstore, got, tag, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// clExpect says what a client's records must look like once stored.
type clExpect struct {
	magic int8
	codec int8
	// headers: the format carries headers (magic 2), so they must arrive.
	headers bool
	// timestamps: 'x' the exact timestamp set on each record, 'w' within
	// [from, to] (the client stamps records itself), 'n' none (magic 0).
	timestamps byte
	from, to   time.Time
	// noKeys: the client sends no keys.
	noKeys bool
	// json: the topic was "<logstore>.json".
	json bool
	// clientID, if set, must be every entry's ClientID.
	clientID string
	// idempotent: magic-2 batches must carry a producer ID (>= 0), or -1
	// when false.
	idempotent bool
	// anyCodec: the client may leave some batches uncompressed
	// (librdkafka does when compressing would not make them smaller), but
	// not all.
	anyCodec bool
}

// checkStored waits for sent (all tagged tag) to reach the appender and
// checks every stored entry and decoded record of tag against sent and exp:
// per partition, the same records in the same order, nothing more.
func (r *clRelay) checkStored(t testing.TB, logstore string, partitions int32, tag string, sent []clSent, exp clExpect) {
	t.Helper()
	r.waitCase(t, logstore, partitions, tag, len(sent))
	time.Sleep(10 * time.Millisecond) // let a stray duplicate arrive, to be caught below
	for p := int32(0); p < partitions; p++ {
		var want []clSent
		for _, s := range sent {
			if s.Partition == p {
				want = append(want, s)
			}
		}
		var got []clStored
		entries := r.caseEntries(t, logstore, p, tag)
		if exp.anyCodec && exp.codec != clCodecNone && len(entries) > 0 && !slices.ContainsFunc(entries, func(e clEntry) bool { return e.Codec == exp.codec }) {
			t.Errorf("%s[%d]: no entry of %s is compressed with %s", logstore, p, tag, clCodecNames[exp.codec])
		}
		for _, e := range entries {
			where := fmt.Sprintf("%s[%d] entry %d", logstore, p, e.index)
			if e.err != nil {
				t.Errorf("%s: %v", where, e.err)
			}
			if e.Magic != exp.magic {
				t.Errorf("%s: magic %d, want %d", where, e.Magic, exp.magic)
			}
			if e.Codec != exp.codec && !(exp.anyCodec && e.Codec == clCodecNone) {
				t.Errorf("%s: codec %d (%s), want %d (%s)", where, e.Codec, clCodecNames[e.Codec], exp.codec, clCodecNames[exp.codec])
			}
			if e.JSON != exp.json {
				t.Errorf("%s: JSON %v, want %v", where, e.JSON, exp.json)
			}
			if e.Credential != (wal.Credential{AccessKeyID: testAKID, AccessKeySecret: testSecret}) {
				t.Errorf("%s: credential %q, want the test key", where, e.Credential.AccessKeyID)
			}
			if exp.clientID != "" && e.ClientID != exp.clientID {
				t.Errorf("%s: client id %q, want %q", where, e.ClientID, exp.clientID)
			}
			if e.Producer == "" || e.ReceivedAt == 0 {
				t.Errorf("%s: producer %q, received at %d: both must be set", where, e.Producer, e.ReceivedAt)
			}
			if e.Magic == 2 {
				info, err := batch.Validate(e.Data, batch.ValidateOptions{ProduceVersion: 13})
				if err != nil {
					t.Errorf("%s: stored batch does not validate: %v", where, err)
				} else if exp.idempotent != (info.ProducerID >= 0) {
					t.Errorf("%s: producer id %d, idempotent %v", where, info.ProducerID, exp.idempotent)
				}
			}
			got = append(got, e.recs...)
		}
		if len(got) != len(want) {
			t.Errorf("%s[%d]: %d records of %s stored, want %d", logstore, p, len(got), tag, len(want))
		}
		for i := 0; i < len(got) && i < len(want); i++ {
			g, w := got[i], want[i]
			where := fmt.Sprintf("%s[%d] record %d of %s (offset %d)", logstore, p, i, tag, g.Offset)
			if i > 0 && g.Offset <= got[i-1].Offset {
				t.Errorf("%s: offset %d after %d", where, g.Offset, got[i-1].Offset)
			}
			if !bytes.Equal(g.Value, w.Value) {
				// After the tag, which the case name makes long: the
				// record's number tells a duplicate from a reordering.
				t.Errorf("%s: value %.40q…, want %.40q…", where, bytes.TrimPrefix(g.Value, []byte(tag)), bytes.TrimPrefix(w.Value, []byte(tag)))
				continue // the rest would only repeat that records are out of order
			}
			wantKey := w.Key
			if exp.noKeys {
				wantKey = nil
			}
			if !bytes.Equal(g.Key, wantKey) || (g.Key == nil) != (wantKey == nil) {
				t.Errorf("%s: key %q, want %q", where, g.Key, wantKey)
			}
			if exp.headers {
				if !clEqualHeaders(g.Headers, w.Headers) {
					t.Errorf("%s: headers %s, want %s", where, clFmtHeaders(g.Headers), clFmtHeaders(w.Headers))
				}
			} else if len(g.Headers) != 0 {
				t.Errorf("%s: headers %s in a format without headers", where, clFmtHeaders(g.Headers))
			}
			switch exp.timestamps {
			case 'x':
				if g.Timestamp != w.Time.UnixMilli() {
					t.Errorf("%s: timestamp %d, want %d (%v)", where, g.Timestamp, w.Time.UnixMilli(), w.Time)
				}
			case 'w':
				if g.Timestamp < exp.from.UnixMilli() || g.Timestamp > exp.to.UnixMilli() {
					t.Errorf("%s: timestamp %d (%v) outside the send window [%v, %v]", where, g.Timestamp, time.UnixMilli(g.Timestamp), exp.from, exp.to)
				}
			case 'n':
				if g.Timestamp != -1 {
					t.Errorf("%s: timestamp %d, want -1 (the format has none)", where, g.Timestamp)
				}
			default:
				t.Fatalf("bad clExpect.timestamps %q", exp.timestamps)
			}
		}
	}
}

func clEqualHeaders(a, b []batch.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func clFmtHeaders(hs []batch.Header) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, h := range hs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", h.Key, h.Value)
	}
	b.WriteByte(']')
	return b.String()
}

// checkAllStreams checks every stream of the relay: entries decode, hold
// what they claim and have gapless offsets.
func (r *clRelay) checkAllStreams(t testing.TB) {
	t.Helper()
	for _, k := range r.app.Streams() {
		for _, e := range r.stream(k) {
			if e.err != nil {
				t.Errorf("%s/%s[%d] entry %d: %v", k.Project, k.Logstore, k.Partition, e.index, e.err)
			}
		}
	}
}
