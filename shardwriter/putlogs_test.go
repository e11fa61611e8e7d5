package shardwriter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/pierrec/lz4/v4"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/wal"
)

// ptRecorder keeps the last PutLogs request a client sent. Safe for
// concurrent use.
type ptRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	last *http.Request
}

func (r *ptRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.last = req
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *ptRecorder) take() *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	req := r.last
	r.last = nil
	return req
}

// ptPool returns a client pool to s, signing as auth says, and the
// recorder of its requests.
func ptPool(t *testing.T, s *slsfake.Server, auth, region string) (*clientPool, *ptRecorder) {
	base := s.HTTPClient()
	rec := &ptRecorder{next: base.Transport}
	hc := *base
	hc.Transport = rec
	p, err := newClientPool(&Options{Endpoint: "http://" + s.Endpoint(), HTTPClient: &hc, AuthVersion: auth, Region: region})
	if err != nil {
		t.Fatal(err)
	}
	return p, rec
}

// ptGroup returns an encoded LogGroup of n logs.
func ptGroup(n int, tag string) []byte {
	g := NewLogGroupBuilder(LogGroupLimits{})
	for i := range n {
		fs := []cvField{{cvContentKey, fmt.Appendf(nil, "%s line %d %s", tag, i, strings.Repeat("abc", i%50))}}
		sec := uint32(time.Now().Unix())
		g.appendLog(lgLogBodySize(sec, fs), sec, uint32(i), fs, logRef{})
	}
	return g.Bytes("", "10.0.0.7", nil)
}

// TestPutLZ4LikeSDK sends LogGroups with putLZ4 and with the SDK's
// PostRawLogWithCompressType to the stand-in, which checks what SLS checks
// (signature v1 or v4, Content-MD5, x-log-content-sha256,
// x-log-bodyrawsize, the lz4 body): both are taken, store the same logs,
// send the same headers (but for the time and what signs it) to the same
// URL, and fail with the same errors.
func TestPutLZ4LikeSDK(t *testing.T) {
	// Headers whose values differ from request to request.
	timed := []string{"Date", "X-Log-Date", "Authorization"}
	for _, auth := range []struct{ version, region string }{{"v1", ""}, {"v4", "cn-local"}} {
		t.Run(auth.version, func(t *testing.T) {
			s := wtStandIn(t)
			p, rec := ptPool(t, s, auth.version, auth.region)
			lzOpts := &Options{Compression: "lz4"}
			sdkOpts := &Options{Compression: "lz4", putViaSDK: true}
			key := "00000000000000000000000000000000"
			put := func(o *Options, c wal.Credential, project, logstore string, raw []byte) (*http.Request, error) {
				err := p.putLogs(o, c, project, logstore, key, raw)
				return rec.take(), err
			}

			// Taken, and stored alike, with a hash key and without.
			raw := ptGroup(300, auth.version)
			var mine, sdk *http.Request
			for _, key = range []string{"", key} {
				var err error
				if mine, err = put(lzOpts, wtCred, wtProject, wtLogstore, raw); err != nil {
					t.Fatalf("putLZ4, key %q: %v", key, err)
				}
				if sdk, err = put(sdkOpts, wtCred, wtProject, wtLogstore, raw); err != nil {
					t.Fatalf("SDK, key %q: %v", key, err)
				}
				if mine.URL.String() != sdk.URL.String() {
					t.Fatalf("key %q: putLZ4 sent to %s, the SDK to %s", key, mine.URL, sdk.URL)
				}
				logs := s.Logs(wtProject, wtLogstore)
				if len(logs) < 600 {
					t.Fatalf("stored %d logs, want 600 more", len(logs))
				}
				logs = logs[len(logs)-600:]
				for i := range 300 {
					a, b := logs[i], logs[300+i]
					if a.Time != b.Time || a.TimeNs != b.TimeNs || a.Source != b.Source || fmt.Sprint(a.Contents) != fmt.Sprint(b.Contents) {
						t.Fatalf("key %q: log %d stored as %+v by putLZ4, %+v by the SDK", key, i, a, b)
					}
				}
			}
			if mine.URL.String() != sdk.URL.String() || mine.Host != sdk.Host || mine.ContentLength != sdk.ContentLength {
				t.Fatalf("putLZ4 sent to %s (host %s, %d bytes), the SDK to %s (host %s, %d bytes)",
					mine.URL, mine.Host, mine.ContentLength, sdk.URL, sdk.Host, sdk.ContentLength)
			}
			names := func(h http.Header) []string {
				var out []string
				for k := range h {
					out = append(out, k)
				}
				slices.Sort(out)
				return out
			}
			if a, b := names(mine.Header), names(sdk.Header); !slices.Equal(a, b) {
				t.Fatalf("putLZ4 sent headers %v, the SDK %v", a, b)
			}
			for k := range sdk.Header {
				if !slices.Contains(timed, k) && mine.Header.Get(k) != sdk.Header.Get(k) {
					t.Errorf("header %s: putLZ4 %q, the SDK %q", k, mine.Header.Get(k), sdk.Header.Get(k))
				}
			}
			for _, k := range []string{"X-Log-Compresstype", "X-Log-Bodyrawsize", "Authorization"} {
				if mine.Header.Get(k) == "" {
					t.Errorf("putLZ4 sent no %s", k)
				}
			}

			// Refused alike.
			refused := func(name string, c wal.Credential, project, logstore string) {
				t.Run(name, func(t *testing.T) {
					_, mineErr := put(lzOpts, c, project, logstore, raw)
					_, sdkErr := put(sdkOpts, c, project, logstore, raw)
					var a, b *sls.Error
					if !errors.As(mineErr, &a) || !errors.As(sdkErr, &b) {
						t.Fatalf("putLZ4: %#v; SDK: %#v", mineErr, sdkErr)
					}
					if a.HTTPCode != b.HTTPCode || a.Code != b.Code || a.Message != b.Message || (a.RequestID == "") != (b.RequestID == "") {
						t.Fatalf("putLZ4: %+v; SDK: %+v", a, b)
					}
					if ra, _ := ruleFor(mineErr); ra != func() errorRule { r, _ := ruleFor(sdkErr); return r }() {
						t.Fatalf("classified differently: %v / %v", mineErr, sdkErr)
					}
				})
			}
			refused("unknown-logstore", wtCred, wtProject, "no-such-logstore")
			refused("unknown-project", wtCred, "no-such-project", wtLogstore)
			refused("wrong-secret", wal.Credential{AccessKeyID: wtCred.AccessKeyID, AccessKeySecret: "wrong"}, wtProject, wtLogstore)
			refused("unknown-key", wal.Credential{AccessKeyID: "no-such-id", AccessKeySecret: "x"}, wtProject, wtLogstore)
		})
	}
}

// TestPutLZ4NetworkError: a transport failure is the SDK's ClientError,
// classified as a network failure, and names no secret.
func TestPutLZ4NetworkError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	p, err := newClientPool(&Options{Endpoint: "http://" + addr, HTTPClient: slsfake.NewHTTPClient(addr, "127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	err = p.putLogs(&Options{}, wtCred, wtProject, wtLogstore, "00", ptGroup(3, "net"))
	var se *sls.Error
	if !errors.As(err, &se) || se.Code != "ClientError" {
		t.Fatalf("got %#v, want the SDK's ClientError", err)
	}
	if r, _ := ruleFor(err); r != ruleNetwork {
		t.Fatalf("classified as %v", r)
	}
	if strings.Contains(err.Error(), wtCred.AccessKeySecret) {
		t.Fatalf("the error names the secret: %v", err)
	}
}

// lateReader is a transport that answers 200 at once and reads each
// request's body only later, as http.RoundTripper allows ("may do so in a
// separate goroutine even after RoundTrip returns"): HTTP/1.1's write loop
// still sends a body when the server answered early, HTTP/2's too. Safe for
// concurrent use.
type lateReader struct {
	mu     sync.Mutex
	bodies []io.ReadCloser
}

func (l *lateReader) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.bodies = append(l.bodies, req.Body)
	l.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: req}, nil
}

// TestPutLZ4BodyReadAfterReturn: a body the transport reads after Do
// returned is still the request's own; the next request does not write
// into it (it reused the pooled buffer at once before).
func TestPutLZ4BodyReadAfterReturn(t *testing.T) {
	tr := &lateReader{}
	p, err := newClientPool(&Options{Endpoint: "http://127.0.0.1:1", HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	for i := range 20 {
		raw := ptGroup(70-i, fmt.Sprintf("request %d", i)) // smaller each time: the buffer is kept
		if err := p.putLogs(&Options{}, wtCred, wtProject, wtLogstore, "00", raw); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, raw)
	}
	for i, b := range tr.bodies {
		body, err := io.ReadAll(b)
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(sent[i]))
		n, err := lz4.UncompressBlock(body, got)
		if err != nil || !bytes.Equal(got[:n], sent[i]) {
			t.Fatalf("request %d: the body read after Do returned is not its LogGroup (%d bytes, %v): a later request wrote into it", i, n, err)
		}
	}
}
