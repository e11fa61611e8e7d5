package shardwriter

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// The writer tests run the real Service, through aliyun-log-go-sdk, against
// the SLS stand-in on a loopback socket, with a real WAL on disk. Between
// the SDK and the stand-in sits wtHook, a test-only RoundTripper that can
// refuse PutLogs bodies holding a marker log (what the strict stand-in will
// do for invalid logs) and shift the Date of the answers (an SLS clock that
// differs from ours).

const (
	wtProject  = "test-project-1"
	wtLogstore = "test-logstore-1" // 2 shards in slsfake.DefaultConfig
)

var wtCred = wal.Credential{AccessKeyID: "demo-akid", AccessKeySecret: "demo-aksecret"}

// wtHook is the test's RoundTripper. Its fields are safe for concurrent
// use.
type wtHook struct {
	next    http.RoundTripper
	refuse  atomic.Pointer[string] // refuse PutLogs bodies with a value containing it
	skew    atomic.Int64           // ns added to each answer's Date
	putSkew atomic.Bool            // only to the answers to PutLogs
	puts    atomic.Int64           // PutLogs requests seen
	// inFlight counts PutLogs between the request and its answer;
	// maxInFlight is the most seen at once.
	inFlight, maxInFlight atomic.Int64
	// holdAfter, when above 0, holds every PutLogs after that many until
	// release is closed; hold, when set, holds PutLogs bodies with a
	// value containing it alike. A held PutLogs fails when drop is closed
	// (the connection a kill cut).
	holdAfter atomic.Int64
	hold      atomic.Pointer[string]
	release   chan struct{}
	drop      chan struct{}
	refused   atomic.Int64 // of which refused by the hook
	mu        sync.Mutex
	times     []uint32 // the Time of every log in a PutLogs body that went on
}

func (h *wtHook) RoundTrip(req *http.Request) (*http.Response, error) {
	put := req.Method == http.MethodPost && strings.Contains(req.URL.Path, "/shards/")
	if put {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		lg, err := wtDecodePut(req, body)
		if err != nil {
			return nil, err
		}
		n := h.puts.Add(1)
		now := h.inFlight.Add(1)
		defer h.inFlight.Add(-1)
		for m := h.maxInFlight.Load(); now > m && !h.maxInFlight.CompareAndSwap(m, now); m = h.maxInFlight.Load() {
		}
		if m := h.hold.Load(); h.holdAfter.Load() > 0 && n > h.holdAfter.Load() || m != nil && wtHolds(lg, *m) {
			select {
			case <-h.release:
			case <-h.drop:
				return nil, errors.New("connection cut (test hook)")
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
		if m := h.refuse.Load(); m != nil && wtHolds(lg, *m) {
			h.refused.Add(1)
			return h.answer(req, 400, `{"errorCode":"PostBodyInvalid","errorMessage":"a log is invalid (test hook)"}`), nil
		}
		h.mu.Lock()
		for _, l := range lg.Logs {
			h.times = append(h.times, l.GetTime())
		}
		h.mu.Unlock()
	}
	resp, err := h.next.RoundTrip(req)
	if err == nil && h.skew.Load() != 0 && (put || !h.putSkew.Load()) {
		if d, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
			resp.Header.Set("Date", d.Add(time.Duration(h.skew.Load())).UTC().Format(http.TimeFormat))
		}
	}
	return resp, err
}

func (h *wtHook) answer(req *http.Request, status int, body string) *http.Response {
	hd := http.Header{}
	hd.Set("Content-Type", "application/json")
	hd.Set("x-log-requestid", "wthook")
	hd.Set("Date", time.Now().Add(time.Duration(h.skew.Load())).UTC().Format(http.TimeFormat))
	return &http.Response{StatusCode: status, Status: strconv.Itoa(status), Header: hd, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req}
}

func wtDecodePut(req *http.Request, body []byte) (*sls.LogGroup, error) {
	raw := body
	if req.Header.Get("x-log-compresstype") == "lz4" {
		n, err := strconv.Atoi(req.Header.Get("x-log-bodyrawsize"))
		if err != nil {
			return nil, err
		}
		raw = make([]byte, n)
		if _, err := lz4.UncompressBlock(body, raw); err != nil {
			return nil, err
		}
	}
	var lg sls.LogGroup
	if err := proto.Unmarshal(raw, &lg); err != nil {
		return nil, err
	}
	return &lg, nil
}

func wtHolds(lg *sls.LogGroup, marker string) bool {
	for _, l := range lg.Logs {
		for _, c := range l.Contents {
			if strings.Contains(c.GetValue(), marker) {
				return true
			}
		}
	}
	return false
}

// wtEnv is a stand-in, a WAL and a Service writing from one to the other.
type wtEnv struct {
	t    *testing.T
	s    *slsfake.Server
	w    *wal.WAL
	hook *wtHook
	svc  *Service
	// dir, key and opts open the WAL and the Service again (restart).
	dir  string
	key  []byte
	opts Options
}

// wtStandIn starts an SLS stand-in with its default projects on loopback.
func wtStandIn(t *testing.T) *slsfake.Server {
	t.Helper()
	s, err := slsfake.New(slsfake.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func wtStart(t *testing.T, mod func(*Options)) *wtEnv {
	t.Helper()
	s := wtStandIn(t)
	key := make([]byte, wal.KeySize)
	rand.Read(key)
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	base := s.HTTPClient()
	hook := &wtHook{next: base.Transport, release: make(chan struct{}), drop: make(chan struct{})}
	hc := *base
	hc.Transport = hook
	opts := Options{
		Endpoint: "http://" + s.Endpoint(), HTTPClient: &hc, Linger: 20 * time.Millisecond,
		RetryInterval: 5 * time.Millisecond, MaxRetryInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&opts)
	}
	svc, err := New(w, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &wtEnv{t: t, s: s, w: w, hook: hook, svc: svc, dir: dir, key: key, opts: opts}
	t.Cleanup(func() { svc.Close() })
	return e
}

// restart stops the Service and closes the WAL, then opens both again on
// the same directory, with the same stand-in and hook, and starts the
// Service: what the WAL wrote before the stop is what the writers find,
// as after a kill. A PutLogs held by the hook must be let go (drop) for
// the stop to end.
func (e *wtEnv) restart() {
	e.t.Helper()
	e.svc.Close()
	e.w.Close()
	w, err := wal.Open(e.dir, wal.Options{EncryptionKey: e.key})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { w.Close() })
	svc, err := New(w, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { svc.Close() })
	e.w, e.svc = w, svc
	svc.Start()
}

// wtEntry returns an entry of recs, gzip-compressed.
func wtEntry(t *testing.T, recs []batchtest.Record) *wal.Entry {
	data := batchtest.RecordBatch(t, recs, batchtest.Gzip, nil)
	return &wal.Entry{Magic: 2, Codec: 1, Records: int32(len(recs)), ReceivedAt: time.Now().UnixNano(),
		Producer: "127.0.0.1:5555", ClientID: "wt", Credential: wtCred, Data: data}
}

// append stores a batch of recs in partition 0.
func (e *wtEnv) append(recs []batchtest.Record) {
	e.t.Helper()
	e.appendEntry(wtEntry(e.t, recs))
}

// appendEntry stores en in partition 0.
func (e *wtEnv) appendEntry(en *wal.Entry) {
	e.t.Helper()
	errc := make(chan error, 1)
	e.w.Append(wal.StreamKey{Project: wtProject, Logstore: wtLogstore}, en, true, func(_ int64, err error) { errc <- err })
	if err := <-errc; err != nil {
		e.t.Fatal(err)
	}
}

// stored returns the content of every log the stand-in holds.
func (e *wtEnv) stored() []string {
	var out []string
	for _, l := range e.s.Logs(wtProject, wtLogstore) {
		for _, c := range l.Contents {
			if c.Key == "content" {
				out = append(out, c.Value)
			}
		}
	}
	return out
}

// waitFor polls cond for up to 20 s.
func (e *wtEnv) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			st := e.svc.Stats()
			e.t.Fatalf("timed out waiting for %s (writer: %d logs, %d retries, %d dead letters; stand-in holds %d logs)",
				what, st.Logs.Load(), st.Retries.Load(), st.DeadLetters.Load(), len(e.stored()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deadRecords returns the dead letters and the records each holds.
func (e *wtEnv) deadRecords() ([]*wal.DeadLetter, [][]batchtest.Record) {
	e.t.Helper()
	var dls []*wal.DeadLetter
	var recs [][]batchtest.Record
	var d batch.Decoder
	for dl, err := range e.w.DeadLetters() {
		if err != nil {
			e.t.Fatal(err)
		}
		var rs []batchtest.Record
		err := d.Decode(dl.Entry.Magic, dl.Entry.Data, batch.DecodeOptions{}, func(r *batch.Record) error {
			br := batchtest.Record{Key: cloneNil(r.Key), Value: cloneNil(r.Value), Timestamp: r.Timestamp}
			for _, h := range r.Headers {
				br.Headers = append(br.Headers, kmsg.Header{Key: h.Key, Value: cloneNil(h.Value)})
			}
			rs = append(rs, br)
			return nil
		})
		if err != nil {
			e.t.Fatalf("dead letter %d does not decode: %v", dl.ID, err)
		}
		if int(dl.Entry.Records) != len(rs) {
			e.t.Fatalf("dead letter %d says %d records, holds %d", dl.ID, dl.Entry.Records, len(rs))
		}
		dls = append(dls, dl)
		recs = append(recs, rs)
	}
	return dls, recs
}

// wtRecords returns n records named name-i, with a key, a header and a
// timestamp a minute ago.
func wtRecords(name string, n int) []batchtest.Record {
	ts := time.Now().Add(-time.Minute).UnixMilli()
	recs := make([]batchtest.Record, n)
	for i := range recs {
		recs[i] = batchtest.Record{
			Key:       []byte(fmt.Sprint("key-", i)),
			Value:     []byte(fmt.Sprintf("%s-%03d", name, i)),
			Headers:   []kmsg.Header{{Key: "h", Value: []byte(fmt.Sprint("hv-", i))}},
			Timestamp: ts + int64(i),
		}
	}
	return recs
}
