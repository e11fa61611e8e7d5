package slsfake

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/pierrec/lz4/v4"
)

// rawPut sends a PutLogs the SDK would never send (other paths, other
// compressions, broken bodies), signed with the SDK's own SignerV1.
// compress is the x-log-compresstype header ("" for none, or
// "json:" for no compression and a JSON Content-Type); rawSize < 0 leaves
// x-log-bodyrawsize out; mutate may break the request after signing.
func rawPut(t *testing.T, s *Server, uri, compress string, body []byte, rawSize int, mutate func(*http.Request)) (int, string) {
	t.Helper()
	h := map[string]string{
		"x-log-apiversion": "0.6.0",
		"Content-Type":     "application/x-protobuf",
		"Date":             time.Now().UTC().Format(http.TimeFormat),
	}
	if rawSize >= 0 {
		h["x-log-bodyrawsize"] = strconv.Itoa(rawSize)
	}
	switch compress {
	case "":
	case "json:":
		h["Content-Type"] = "application/json"
	default:
		h["x-log-compresstype"] = compress
	}
	if err := sls.NewSignerV1("demo-akid", "demo-aksecret").Sign("POST", uri, h, body); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", "http://"+proj+"."+s.Endpoint()+uri, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	if mutate != nil {
		mutate(req)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("x-log-requestid") == "" {
		t.Fatal("no x-log-requestid")
	}
	var e APIError
	if resp.StatusCode != 200 {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("error body %q is not SLS's JSON: %v", b, err)
		}
	}
	return resp.StatusCode, e.Code
}

func TestRawPutLogs(t *testing.T) {
	s := start(t, testConfig())
	good, _ := logGroup("raw", 3, uint32(time.Now().Unix())).Marshal()
	lz4Body := make([]byte, lz4.CompressBlockBound(len(good)))
	n, err := lz4.CompressBlock(good, lz4Body, nil)
	if err != nil || n == 0 {
		t.Fatalf("lz4: %d, %v", n, err)
	}
	lz4Body = lz4Body[:n]
	var zbuf bytes.Buffer
	zw := zlib.NewWriter(&zbuf)
	zw.Write(good)
	zw.Close()

	stored := 0
	f := func(name, uri, compress string, body []byte, rawSize int, mutate func(*http.Request), wantStatus int, wantCode string) {
		t.Run(name, func(t *testing.T) {
			status, code := rawPut(t, s, uri, compress, body, rawSize, mutate)
			if status != wantStatus || code != wantCode {
				t.Fatalf("got %d %q, want %d %q", status, code, wantStatus, wantCode)
			}
			if status == 200 {
				stored += 3
			}
			if got := s.LogCount(proj, ls1); got != stored {
				t.Fatalf("LogCount = %d, want %d", got, stored)
			}
		})
	}
	lb := "/logstores/" + ls1 + "/shards/lb"
	f("lb lz4", lb, "lz4", lz4Body, len(good), nil, 200, "")
	f("lb deflate", lb, "deflate", zbuf.Bytes(), len(good), nil, 200, "")
	f("lb none", lb, "", good, len(good), nil, 200, "")
	f("route", "/logstores/"+ls1+"/shards/route?key=abc", "", good, len(good), nil, 200, "")
	f("route without key", "/logstores/"+ls1+"/shards/route", "", good, len(good), nil, 400, "ParameterInvalid")
	f("route bad key", "/logstores/"+ls1+"/shards/route?key=xyz", "", good, len(good), nil, 400, "ParameterInvalid")
	f("not a LogGroup", lb, "", []byte{0xff, 0xff, 0xff}, 3, nil, 400, "PostBodyInvalid")
	f("raw size mismatch", lb, "", good, len(good)+1, nil, 400, "InvalidBodyRawSize")
	f("raw size missing", lb, "", good, -1, nil, 400, "MissingBodyRawSize")
	f("raw size too large", lb, "lz4", lz4Body, 11<<20, nil, 400, "PostBodyTooLarge")
	f("lz4 garbage", lb, "lz4", []byte{0xf0, 0xff}, 100, nil, 400, "PostBodyUncompressError")
	f("unknown compression", lb, "snappy", good, len(good), nil, 400, "InvalidCompressType")
	f("json body", lb, "json:", good, len(good), nil, 415, "InvalidContentType")
	f("content type changed after signing", lb, "", good, len(good), func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 401, "SignatureNotMatch")
	f("tampered body", lb, "", good, len(good), func(r *http.Request) {
		r.Body = io.NopCloser(bytes.NewReader(append([]byte{}, good[1:]...)))
		r.ContentLength = int64(len(good) - 1)
	}, 400, "InvalidContentMD5")
	f("stale date", lb, "", good, len(good), func(r *http.Request) {
		r.Header.Set("Date", time.Now().Add(-20*time.Minute).UTC().Format(http.TimeFormat))
	}, 400, "RequestTimeExpired")
	f("date changed after signing", lb, "", good, len(good), func(r *http.Request) {
		r.Header.Set("Date", time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat))
	}, 401, "SignatureNotMatch")
	f("header changed after signing", lb, "", good, len(good), func(r *http.Request) { r.Header.Set("x-log-extra", "1") }, 401, "SignatureNotMatch")
	f("anonymous", lb, "", good, len(good), func(r *http.Request) { r.Header.Del("Authorization") }, 401, "Unauthorized")
	f("no api version", lb, "", good, len(good), func(r *http.Request) { r.Header.Del("x-log-apiversion") }, 400, "MissingAPIVersion")
	f("unknown path", "/logstores/"+ls1+"/index", "", good, len(good), nil, 404, "NotSupported")
}
