package shardwriter

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

const (
	wpProject  = "proof-project"
	wpLogstore = "proof-logstore"
	wpOther    = "proof-other"
	wpRegion   = "cn-proof"
)

var (
	wpWriter = wal.Credential{AccessKeyID: "writer-akid", AccessKeySecret: "writer-secret"}
	wpReader = wal.Credential{AccessKeyID: "reader-akid", AccessKeySecret: "reader-secret"}
)

// wpStandIn starts a stand-in in region wpRegion with a key that may read
// and write wpProject and one that may only read it.
func wpStandIn(t *testing.T) *slsfake.Server {
	t.Helper()
	s, err := slsfake.New(slsfake.Config{
		Region: wpRegion,
		Projects: []slsfake.ProjectConfig{{Name: wpProject, Logstores: []slsfake.LogstoreConfig{
			{Name: wpLogstore, ShardCount: 2}, {Name: wpOther, ShardCount: 1},
		}}},
		AccessKeys: []slsfake.AccessKeyConfig{
			{ID: wpWriter.AccessKeyID, Secret: wpWriter.AccessKeySecret, Projects: map[string]slsfake.Permission{wpProject: {Read: true, Write: true}}},
			// Until the stand-in models per-action RAM policies: a key
			// that may read but not write.
			{ID: wpReader.AccessKeyID, Secret: wpReader.AccessKeySecret, Projects: map[string]slsfake.Permission{wpProject: {Read: true, Write: false}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// wpEnv is a real WAL and a Service against a stand-in, and the log lines
// the Service wrote.
type wpEnv struct {
	fake  *slsfake.Server
	wal   *wal.WAL
	svc   *Service
	cat   *Catalog
	state string
	logs  *wpLogBuffer
	// ends is each stream's end after the appends produce made: an append
	// is answered once synced, and counted in the WAL's Stats once
	// indexed, just after, so waitDrained waits for these.
	ends map[wal.StreamKey]int64
}

type wpLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *wpLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if testing.Verbose() {
		os.Stderr.Write(p)
	}
	return l.b.Write(p)
}

func (l *wpLogBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// wpService makes a Service on dir's WAL and state file; modify adjusts its
// options.
func wpService(t *testing.T, fake *slsfake.Server, dir string, modify ...func(*Options)) *wpEnv {
	t.Helper()
	key := filepath.Join(dir, "wal.key")
	if _, err := os.Stat(key); err != nil {
		raw := make([]byte, wal.KeySize)
		rand.Read(raw)
		if err := os.WriteFile(key, []byte(fmt.Sprintf("%x\n", raw)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k, err := wal.LoadKeyFile(key)
	if err != nil {
		t.Fatal(err)
	}
	logs := &wpLogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	w, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{EncryptionKey: k, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	state := filepath.Join(dir, "catalog.json")
	o := Options{
		Endpoint: "http://" + fake.Endpoint(), HTTPClient: fake.HTTPClient(), Region: wpRegion,
		Linger: 10 * time.Millisecond, RetryInterval: 50 * time.Millisecond,
		Catalog: CatalogOptions{StateFile: state},
		Logger:  log,
	}
	for _, m := range modify {
		m(&o)
	}
	svc, err := New(w, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &wpEnv{fake: fake, wal: w, svc: svc, cat: svc.Catalog(), state: state, logs: logs}
}

// wpEntry is a batch of values as the front end stores it.
func wpEntry(cred wal.Credential, values ...string) *wal.Entry {
	now := time.Now()
	recs := make([]batchtest.Record, len(values))
	for i, v := range values {
		recs[i] = batchtest.Record{Value: []byte(v), Timestamp: now.UnixMilli()}
	}
	return &wal.Entry{Magic: 2, Records: int32(len(values)), ReceivedAt: now.UnixNano(), Credential: cred,
		Data: batchtest.UncompressedRecordBatch(recs, nil)}
}

// produce does what the front end's Produce handler does with a catalog
// (engine/00_produce.go): Partitions, then ProveWrite unless the pair is
// proven, then the WAL append (flagged Delivered after a proof). It
// returns the catalog's refusal, if any.
func (e *wpEnv) produce(t *testing.T, logstore string, partition int32, entry *wal.Entry) error {
	t.Helper()
	ctx := context.Background()
	n, err := e.cat.Partitions(ctx, wpProject, entry.Credential, logstore)
	if err != nil {
		return err
	}
	if partition >= n {
		t.Fatalf("partition %d of %d", partition, n)
	}
	k := wal.StreamKey{Project: wpProject, Logstore: logstore, Partition: partition}
	if !e.cat.WriteProven(wpProject, entry.Credential, logstore) {
		if err := e.cat.ProveWrite(ctx, k, entry); err != nil {
			return err
		}
		entry.Delivered = true
	}
	done := make(chan error, 1)
	var base int64
	e.wal.Append(k, entry, true, func(off int64, err error) { base = off; done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.ends == nil {
		e.ends = map[wal.StreamKey]int64{}
	}
	e.ends[k] = max(e.ends[k], base+int64(entry.Records))
	return nil
}

// values returns the content of every log the stand-in holds for logstore.
func (e *wpEnv) values(logstore string) map[string]int {
	out := map[string]int{}
	for _, l := range e.fake.Logs(wpProject, logstore) {
		for _, kv := range l.Contents {
			if kv.Key == "content" {
				out[kv.Value]++
			}
		}
	}
	return out
}

// waitDrained waits until the writers committed every entry produced.
func (e *wpEnv) waitDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	drained := func() bool {
		st := e.wal.Stats()
		committed := map[wal.StreamKey]int64{}
		for _, s := range st.Streams {
			committed[s.Key] = s.Committed
		}
		for k, end := range e.ends {
			if committed[k] < end {
				return false
			}
		}
		return st.PendingEntries == 0
	}
	for !drained() {
		if time.Now().After(deadline) {
			t.Fatalf("writers did not drain the WAL: %+v", e.wal.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wpState(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// A key that may read but not write gets TOPIC_AUTHORIZATION_FAILED at its
// first batch, which SLS never stored and the relay does not store either;
// the refusal is remembered, so the next batch does not ask SLS again.
func TestWriteProofReadOnlyKey(t *testing.T) {
	e := wpService(t, wpStandIn(t), t.TempDir())
	e.svc.Start()
	n, err := e.cat.Partitions(context.Background(), wpProject, wpReader, wpLogstore)
	if err != nil || n != 2 {
		t.Fatalf("Partitions for a key that may read: %d, %v", n, err)
	}
	err = e.produce(t, wpLogstore, 0, wpEntry(wpReader, "must not be acknowledged"))
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("first batch of a read-only key: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if !strings.Contains(err.Error(), "PostLogStoreLogs") {
		t.Errorf("the refusal does not say which action SLS denied: %v", err)
	}
	if st := e.wal.Stats(); len(st.Streams) != 0 {
		t.Errorf("the WAL holds %+v after a refused proof", st.Streams)
	}
	if got := e.fake.LogCount(wpProject, wpLogstore); got != 0 {
		t.Errorf("SLS holds %d logs", got)
	}
	puts := e.fake.Stats().Requests[slsfake.OpPutLogs]
	for range 3 {
		if err := e.produce(t, wpLogstore, 1, wpEntry(wpReader, "again")); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("later batch: %v", err)
		}
	}
	if again := e.fake.Stats().Requests[slsfake.OpPutLogs]; again != puts {
		t.Errorf("%d more PutLogs for a refused pair within DenyTTL", again-puts)
	}
	if got := e.logs.count("may not write"); got != 1 {
		t.Errorf("%d log lines about the refused key, want 1", got)
	}
	if st := wpState(t, e.state); strings.Contains(st, wpReader.AccessKeyID) || strings.Contains(st, wpReader.AccessKeySecret) {
		t.Errorf("the state file names the refused key: %s", st)
	}
}

// A key that may write: its first batch is delivered by the proof (once,
// not again by the writer), the next ones by the writers; the proof
// survives a restart while SLS is unreachable.
func TestWriteProofDeliversFirstBatchOnce(t *testing.T) {
	fake := wpStandIn(t)
	dir := t.TempDir()
	e := wpService(t, fake, dir)
	e.svc.Start()
	if err := e.produce(t, wpLogstore, 0, wpEntry(wpWriter, "first-1", "first-2", "first-3")); err != nil {
		t.Fatalf("first batch: %v", err)
	}
	if got := fake.LogCount(wpProject, wpLogstore); got != 3 {
		t.Fatalf("SLS holds %d logs right after the proof, want 3", got)
	}
	if !e.cat.WriteProven(wpProject, wpWriter, wpLogstore) {
		t.Fatal("pair not proven after SLS took its batch")
	}
	if err := e.produce(t, wpLogstore, 0, wpEntry(wpWriter, "second-1", "second-2")); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(t, wpLogstore, 1, wpEntry(wpWriter, "third-1")); err != nil {
		t.Fatal(err)
	}
	e.waitDrained(t)
	time.Sleep(50 * time.Millisecond) // a second delivery would show now
	got := e.values(wpLogstore)
	for _, v := range []string{"first-1", "first-2", "first-3", "second-1", "second-2", "third-1"} {
		if got[v] != 1 {
			t.Errorf("%q stored %d times, want once (all: %v)", v, got[v], got)
		}
	}
	if n := fake.LogCount(wpProject, wpLogstore); n != 6 {
		t.Errorf("SLS holds %d logs, want 6", n)
	}
	if s := e.svc.Stats(); s.Logs.Load() != 6 {
		t.Errorf("Stats.Logs %d, want 6 (the proof's logs count)", s.Logs.Load())
	}
	st := wpState(t, e.state)
	if !strings.Contains(st, wpWriter.AccessKeyID) || strings.Contains(st, wpWriter.AccessKeySecret) {
		t.Errorf("state file should name the proven key by id only: %s", st)
	}

	// Restart while SLS refuses every connection: the proven pair still
	// answers (from the state file), the unproven one cannot.
	e.svc.Close()
	e.wal.Close()
	if err := fake.Outage(time.Minute, slsfake.OutageRefuse); err != nil {
		t.Fatal(err)
	}
	e2 := wpService(t, fake, dir)
	if !e2.cat.WriteProven(wpProject, wpWriter, wpLogstore) {
		t.Fatal("proof lost in a restart")
	}
	if n, err := e2.cat.Partitions(context.Background(), wpProject, wpWriter, wpLogstore); err != nil || n != 2 {
		t.Errorf("proven pair during an outage: %d, %v", n, err)
	}
	if e2.cat.WriteProven(wpProject, wal.Credential{AccessKeyID: wpWriter.AccessKeyID, AccessKeySecret: "other"}, wpLogstore) {
		t.Error("the proof holds for another secret")
	}
	err := e2.produce(t, wpOther, 0, wpEntry(wpWriter, "x"))
	var ke *kerr.Error
	if err == nil || errors.As(err, &ke) {
		t.Errorf("unproven pair during an outage: %v, want a retriable (non-Kafka) error", err)
	}
}

// SLS failing for a reason time fixes (5xx) gives a retriable error, stores
// nothing and proves nothing; the retry then proves the pair.
func TestWriteProofRetriable(t *testing.T) {
	fake := wpStandIn(t)
	e := wpService(t, fake, t.TempDir())
	if _, err := fake.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Status: 500, Count: 1}); err != nil {
		t.Fatal(err)
	}
	err := e.produce(t, wpLogstore, 0, wpEntry(wpWriter, "v"))
	var ke *kerr.Error
	if err == nil || errors.As(err, &ke) {
		t.Fatalf("PutLogs answered 500: %v, want a retriable (non-Kafka) error", err)
	}
	if e.cat.WriteProven(wpProject, wpWriter, wpLogstore) || len(e.wal.Stats().Streams) != 0 {
		t.Fatal("a failed proof proved or stored something")
	}
	if err := e.produce(t, wpLogstore, 0, wpEntry(wpWriter, "v")); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := fake.LogCount(wpProject, wpLogstore); got != 1 {
		t.Fatalf("SLS holds %d logs, want 1", got)
	}
}

// WriteDenied turns a proven pair to TOPIC_AUTHORIZATION_FAILED at once,
// forgets its proof (also in the state file), counts each refusal and logs
// one line; after DenyTTL SLS is asked again.
func TestWriteDeniedFlipsProvenPair(t *testing.T) {
	e := wpService(t, wpStandIn(t), t.TempDir(), func(o *Options) { o.Catalog.DenyTTL = 300 * time.Millisecond })
	if err := e.produce(t, wpLogstore, 0, wpEntry(wpWriter, "v")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(wpState(t, e.state), wpWriter.AccessKeyID) {
		t.Fatal("proof not persisted")
	}
	counter := metrics.GetOrCreateCounter(fmt.Sprintf(`slsrelay_write_denied_total{access_key_id=%q,project=%q,logstore=%q}`, wpWriter.AccessKeyID, wpProject, wpLogstore))
	before := counter.Get()
	refusal := errors.New("SLS answered 401 Unauthorized: denied by sts or ram, action: log:PostLogStoreLogs")
	for range 3 {
		e.cat.WriteDenied(wpProject, wpLogstore, wpWriter, refusal)
	}
	if e.cat.WriteProven(wpProject, wpWriter, wpLogstore) {
		t.Error("pair still proven")
	}
	if _, err := e.cat.Partitions(context.Background(), wpProject, wpWriter, wpLogstore); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("Partitions after WriteDenied: %v", err)
	}
	if err := e.produce(t, wpLogstore, 0, wpEntry(wpWriter, "w")); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("Produce after WriteDenied: %v", err)
	}
	if got := counter.Get() - before; got != 3 {
		t.Errorf("metric counted %d refusals, want 3", got)
	}
	if got := e.logs.count("may not write"); got != 1 {
		t.Errorf("%d log lines for 3 refusals, want 1", got)
	}
	if strings.Contains(wpState(t, e.state), wpWriter.AccessKeyID) {
		t.Error("proof still in the state file")
	}
	if e.logs.count(wpWriter.AccessKeySecret) != 0 {
		t.Error("the secret was logged")
	}
	// Other pairs are untouched; the refused one is tried again (and, as
	// the stand-in still lets the key write, proven) after DenyTTL.
	if err := e.produce(t, wpOther, 0, wpEntry(wpWriter, "other")); err != nil {
		t.Errorf("another logstore of the key: %v", err)
	}
	time.Sleep(350 * time.Millisecond)
	if err := e.produce(t, wpLogstore, 0, wpEntry(wpWriter, "x")); err != nil {
		t.Errorf("after DenyTTL: %v", err)
	}
	if !e.cat.WriteProven(wpProject, wpWriter, wpLogstore) {
		t.Error("not proven again after a successful write")
	}
}

// Topics answers from what the key has been seen to use, without
// ListLogStores (not in SLS's documented RAM policy for its Kafka
// endpoint), and never fails; after a restart, from the state file.
func TestTopicsWithoutListLogStores(t *testing.T) {
	fake := wpStandIn(t)
	dir := t.TempDir()
	e := wpService(t, fake, dir)
	ctx := context.Background()
	f := func(cat *Catalog, cred wal.Credential, want ...string) {
		t.Helper()
		got, err := cat.Topics(ctx, wpProject, cred)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Topics for %s: %v, %v; want %v", cred.AccessKeyID, got, err, want)
		}
	}
	f(e.cat, wpWriter)
	if err := e.produce(t, wpOther, 0, wpEntry(wpWriter, "v")); err != nil {
		t.Fatal(err)
	}
	f(e.cat, wpWriter, wpOther)
	if _, err := e.cat.Partitions(ctx, wpProject, wpReader, wpLogstore); err != nil {
		t.Fatal(err)
	}
	f(e.cat, wpReader, wpLogstore) // read lately
	f(e.cat, wpWriter, wpOther)
	e.svc.Close()
	e.wal.Close()
	e2 := wpService(t, fake, dir)
	f(e2.cat, wpWriter, wpOther)
	f(e2.cat, wal.Credential{AccessKeyID: wpWriter.AccessKeyID, AccessKeySecret: "wrong"})
	f(e2.cat, wpReader) // a read is not persisted
	if n := fake.Stats().Requests[slsfake.OpListLogStores]; n != 0 {
		t.Errorf("%d ListLogStores requests", n)
	}
}

// Options.Region turns on signature v4 (the stand-in checks the region
// of v4 signatures); v1 where configured; https unless the endpoint says
// http://.
func TestSigning(t *testing.T) {
	fake := wpStandIn(t)
	f := func(name string, modify func(*Options), wantErr string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if wantErr == "New" {
				key := make([]byte, wal.KeySize)
				w, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{EncryptionKey: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				o := Options{Endpoint: "http://" + fake.Endpoint()}
				modify(&o)
				if _, err := New(w, o); err == nil {
					t.Fatalf("New accepted %+v", o)
				}
				return
			}
			e := wpService(t, fake, dir, modify)
			_, err := e.cat.Partitions(context.Background(), wpProject, wpWriter, wpLogstore)
			switch {
			case wantErr == "" && err != nil:
				t.Fatalf("Partitions: %v", err)
			case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
				t.Fatalf("Partitions: %v, want an error containing %q", err, wantErr)
			}
			if wantErr == "" && e.cat.clients.get(wpWriter).AuthVersion != map[bool]sls.AuthVersionType{true: sls.AuthV4, false: sls.AuthV1}[e.cat.clients.region != ""] {
				t.Fatalf("client signs with %q", e.cat.clients.get(wpWriter).AuthVersion)
			}
		})
	}
	f("v4 with the region", func(o *Options) {}, "")
	f("v4 with another region", func(o *Options) { o.Region = "cn-elsewhere" }, "region cn-elsewhere")
	f("v1 configured", func(o *Options) { o.Region, o.AuthVersion = "", "v1" }, "")
	f("v1 by default without a region", func(o *Options) { o.Region = "" }, "")
	f("https by default", func(o *Options) { o.Endpoint = fake.Endpoint() }, "HTTPS")
	f("v4 without a region", func(o *Options) { o.Region, o.AuthVersion = "", "v4" }, "New")
	f("unknown version", func(o *Options) { o.AuthVersion = "v2" }, "New")
}

// Concurrent first calls on a fresh client do not race in the SDK's lazy
// initialisation (run with -race): the pool sets every field it fills.
func TestClientConcurrentFirstCalls(t *testing.T) {
	fake := wpStandIn(t)
	p, err := newClientPool(&Options{Endpoint: "http://" + fake.Endpoint(), HTTPClient: fake.HTTPClient(), Region: wpRegion})
	if err != nil {
		t.Fatal(err)
	}
	cl := p.get(wpWriter)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cl.ListShards(wpProject, wpLogstore)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
