package slsfake

import (
	"errors"
	"os"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

const (
	proj = "test-project-1"
	ls1  = "test-logstore-1" // 2 shards
	ls2  = "test-logstore-2" // 4 shards
)

func TestMain(m *testing.M) {
	// The SDK retries 5xx by itself for up to its retry timeout and then
	// hides the status; the tests want to see each answer (DESIGN.md).
	sls.RetryOnServerErrorEnabled = false
	os.Exit(m.Run())
}

// testConfig is DefaultConfig plus a read-only key and a write-only key,
// with quotas off unless a test turns them on.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.DefaultQuota = &Quota{}
	cfg.AccessKeys = append(cfg.AccessKeys,
		AccessKeyConfig{ID: "reader", Secret: "reader-secret", Projects: map[string]Permission{proj: {Read: true}}},
		AccessKeyConfig{ID: "writer", Secret: "writer-secret", Projects: map[string]Permission{proj: {Write: true}}},
	)
	return cfg
}

// start runs a stand-in on a free loopback port for the test's lifetime.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	return startWith(t, cfg, nil)
}

// startWith lets a test adjust the server (its clock) before it serves.
func startWith(t *testing.T, cfg Config, adjust func(*Server)) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(s)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client builds a real SDK client that reaches s: the SDK gets a host name
// as endpoint, and an HTTP client whose dialer sends it to s.
func client(s *Server, akid, secret string) *sls.Client {
	return &sls.Client{
		Endpoint:        s.Endpoint(), // "slsfake.local:<port>"
		AccessKeyID:     akid,
		AccessKeySecret: secret,
		HTTPClient:      s.HTTPClient(),
		// Short, so a GET the SDK retries on a transport error gives up
		// quickly.
		RetryTimeOut:   2 * time.Second,
		RequestTimeOut: 10 * time.Second,
	}
}

func demoClient(s *Server) *sls.Client { return client(s, "demo-akid", "demo-aksecret") }

// slsErr extracts the SDK's error type, failing the test if it is another.
func slsErr(t *testing.T, err error) *sls.Error {
	t.Helper()
	var e *sls.Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %T %v, want *sls.Error", err, err)
	}
	return e
}

// recent is a log time inside SLS's window (a minute before the tests
// started), which the stand-in enforces by default.
var recent = uint32(time.Now().Add(-time.Minute).Unix())

func strp(s string) *string { return &s }
func u32p(v uint32) *uint32 { return &v }

// logGroup builds a LogGroup of n logs with distinct contents and
// nanosecond times.
func logGroup(topic string, n int, base uint32) *sls.LogGroup {
	lg := &sls.LogGroup{
		Topic:   strp(topic),
		Source:  strp("10.0.0.1"),
		LogTags: []*sls.LogTag{{Key: strp("__tag__:host"), Value: strp("h1")}, {Key: strp("env"), Value: strp("test")}},
	}
	for i := range n {
		lg.Logs = append(lg.Logs, &sls.Log{
			Time:   u32p(base + uint32(i)),
			TimeNs: u32p(uint32(1000*i + 7)),
			Contents: []*sls.LogContent{
				{Key: strp("content"), Value: strp(topic + " line " + string(rune('a'+i%26)))},
				{Key: strp("seq"), Value: strp(time.Duration(i).String())},
			},
		})
	}
	return lg
}

// pullAll reads a shard from begin to end through the SDK.
func pullAll(t *testing.T, c *sls.Client, project, logstore string, shard int) []*sls.LogGroup {
	t.Helper()
	cur, err := c.GetCursor(project, logstore, shard, "begin")
	if err != nil {
		t.Fatal(err)
	}
	var out []*sls.LogGroup
	for {
		gl, next, err := c.PullLogs(project, logstore, shard, cur, "", 2)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, gl.LogGroups...)
		if next == cur {
			return out
		}
		cur = next
	}
}
