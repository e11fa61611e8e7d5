package shardwriter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/slsrelay/slsrelay/wal"
)

// PutLogs of a LogGroup already encoded (LogGroupBuilder), lz4-compressed
// here with state and buffers reused from request to request.
//
// The SDK's Client.PostRawLogWithCompressType sends the same request, but
// allocates a new lz4 output buffer of the body's bound (4 MiB and more)
// for each one, and takes its compressor from a pool shared by the
// process (log_store.go PostRawLogs in aliyun-log-go-sdk v0.1.127). This
// sender builds the request as the SDK does — the same headers, signed by
// the SDK's own exported signers (sls.SignerV1, sls.SignerV4), the same
// URL, the same errors — so SLS sees no difference (TestPutLZ4LikeSDK
// compares the two against the stand-in, which checks what SLS checks):
//
//   - PutLogs is POST /logstores/{logstore}/shards/route?key={hashKey}
//     (PostRawLogs; /logstores/{logstore} without a key, PutRawLog), its body the
//     LogGroup protobuf, compressed as x-log-compresstype says: "lz4" is
//     one LZ4 block, no frame
//     (https://www.alibabacloud.com/help/en/sls/developer-reference/api-sls-2020-12-30-putlogs).
//   - x-log-bodyrawsize is the body's size before compression; the common
//     request headers page (https://help.aliyun.com/en/sls/developer-reference/common-request-headers,
//     Chinese https://help.aliyun.com/document_detail/29010.htm) says it
//     is needed when the body is compressed, and still gives its range as
//     0 to 3x1024x1024, the old 3 MB limit of a request; the current
//     PutLogs page takes 10 MB, which the SDK's producer and loggroup.go
//     rely on. The SDK refuses to send without it (request.go realRequest).
//   - Content-MD5, the upper-case hex MD5 of the body as sent (the
//     compressed bytes): the common headers page marks it "Required: No
//     ... Not required if the request has no body", the request signature
//     page (https://help.aliyun.com/en/sls/developer-reference/request-signatures)
//     lists it among the required fields and signs it. Unclear, so it is
//     always sent, as the SDK does: SignerV1.Sign computes and signs it.
//     Signature v4 signs the body's SHA-256 instead (x-log-content-sha256,
//     SignerV4.Sign), without Content-MD5, as the SDK.
//   - x-log-apiversion 0.6.0, Content-Type application/x-protobuf, Date
//     (v1) or x-log-date (v4), Host, User-Agent, x-log-signaturemethod and
//     Authorization: as request.go realRequest and the signers set them.
//
// One difference: the SDK sends a write again itself on HTTP 500, 502 and
// 503 (request.go retryWriteErrorCheck, with RetryOnServerErrorEnabled,
// the default) until Client.RetryTimeOut (5 s here, clients.go) ends;
// putLZ4 sends once and returns SLS's answer, and the writer retries it
// with its own back-off (classify.go: rule server), the one it uses when
// the SDK has given up. Such answers are counted in
// slsrelay_sls_errors_total at each one rather than only after 5 s.
//
// zstd bodies still go through the SDK (PostRawLogWithCompressType): the
// SDK's encoder is shared and kept.

// slsAPIVersion is the x-log-apiversion the SDK sends (config.go).
const slsAPIVersion = "0.6.0"

// putState is one request's reusable state: the compressor, the
// compressed body, the header map. Taken from putStates for one request,
// so any number of requests may be in flight at once.
type putState struct {
	lz   lz4Encoder
	body []byte
	hdr  map[string]string
	uri  []byte
	// refs counts the users of the state: the request that took it, and
	// each of its bodies not closed yet. The transport may read a body
	// after Do returned ("may do so in a separate goroutine even after
	// RoundTrip returns", net/http RoundTripper: HTTP/1.1's write loop
	// when SLS answered before the whole body was sent), so the last one
	// to let go puts the state back in putStates (release).
	refs atomic.Int32
}

// putStates holds putStates between requests. A body buffer larger than
// putKeepBytes (a LogGroup well above the 5 MB SLS takes) is dropped
// rather than kept.
var putStates = sync.Pool{New: func() any { return &putState{hdr: make(map[string]string, 16)} }}

const putKeepBytes = 16 << 20

// takePutState returns a state for one request, which calls release when
// done with it.
func takePutState() *putState {
	st := putStates.Get().(*putState)
	st.refs.Store(1)
	return st
}

// release drops one use of st; the last returns it to putStates.
func (st *putState) release() {
	if st.refs.Add(-1) != 0 {
		return
	}
	clear(st.hdr)
	if cap(st.body) > putKeepBytes {
		st.body = nil
	}
	putStates.Put(st)
}

// putBody is one request's body over a putState's buffer.
type putBody struct {
	bytes.Reader
	st     *putState
	closed atomic.Bool
}

// newBody opens a reader of st.body for one request (or its retry on
// another connection, http.Request.GetBody).
func (st *putState) newBody() *putBody {
	st.refs.Add(1)
	b := &putBody{st: st}
	b.Reset(st.body)
	return b
}

// Close ends this reader's use of the buffer. Safe for concurrent use.
func (b *putBody) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.st.release()
	}
	return nil
}

// putLogs sends raw, an encoded LogGroup, compressed as o says: lz4 by
// putLZ4, zstd (or lz4 with o.putViaSDK) through the SDK's
// PostRawLogWithCompressType. Safe for concurrent use.
func (p *clientPool) putLogs(o *Options, c wal.Credential, project, logstore, hashKey string, raw []byte) error {
	if ct := o.compressType(); ct != sls.Compress_LZ4 || o.putViaSDK {
		return p.get(c).PostRawLogWithCompressType(project, logstore, raw, ct, &hashKey)
	}
	return p.putLZ4(c, project, logstore, hashKey, raw)
}

// putLZ4 sends raw, an encoded LogGroup, to project/logstore with lz4, as
// PutLogs to the shard whose range holds hashKey (any shard when
// hashKey is ""), with credential c. Errors are the SDK's: *sls.Error
// for SLS's answers (its code, message and request id), and for anything
// else (network, an answer that is not SLS's JSON) an *sls.Error with Code
// "ClientError", as PostRawLogs wraps them (sls.NewClientError).
func (p *clientPool) putLZ4(c wal.Credential, project, logstore, hashKey string, raw []byte) error {
	if len(raw) == 0 {
		return nil // as the SDK: nothing to send
	}
	st := takePutState()
	defer st.release()
	// lz4 and the signature's MD5 are a sender's CPU-heavy work: done
	// holding a CPU slot, as the writers' conversion (cpuslots.go); the
	// wait for SLS's answer is not.
	acquireCPU()
	st.body = st.lz.compress(st.body[:0], raw)
	h := st.hdr
	h["x-log-compresstype"] = "lz4"
	h[sls.HTTPHeaderBodyRawSize] = strconv.Itoa(len(raw))
	h[sls.HTTPHeaderContentType] = "application/x-protobuf"
	req, err := p.signed(c, project, p.routeURI(st, logstore, hashKey), h, st)
	releaseCPU()
	if err != nil {
		return err
	}
	return p.do(req)
}

// routeURI returns the PutLogs path and query, as PostRawLogs writes them
// (without a hash key, PostRawLogs calls PutRawLog, which posts to the
// Logstore itself; log_store.go).
func (p *clientPool) routeURI(st *putState, logstore, hashKey string) string {
	b := append(st.uri[:0], "/logstores/"...)
	b = append(b, logstore...)
	if hashKey != "" {
		b = append(append(b, "/shards/route?key="...), hashKey...)
	}
	st.uri = b
	return string(b)
}

// signed builds one POST request with st's body, as the SDK's realRequest
// (request.go): the public headers, the signature of p.authVersion, then
// the headers as they are. do sends it.
func (p *clientPool) signed(c wal.Credential, project, uri string, h map[string]string, st *putState) (*http.Request, error) {
	body := st.body
	scheme, host := "https://", strings.TrimPrefix(p.endpoint, "https://")
	if strings.HasPrefix(p.endpoint, "http://") {
		scheme, host = "http://", strings.TrimPrefix(p.endpoint, "http://")
	}
	baseURL := scheme + project + "." + host
	h[sls.HTTPHeaderHost] = baseURL
	h[sls.HTTPHeaderAPIVersion] = slsAPIVersion
	ua := p.userAgent
	if ua == "" {
		ua = sls.DefaultLogUserAgent
	}
	h[sls.HTTPHeaderUserAgent] = ua
	now := time.Now().In(putGMT)
	var err error
	if p.authVersion == sls.AuthV4 {
		h[sls.HTTPHeaderLogDate] = now.Format(sls.ISO8601)
		err = sls.NewSignerV4(c.AccessKeyID, c.AccessKeySecret, p.region).Sign(http.MethodPost, uri, h, body)
	} else {
		h[sls.HTTPHeaderDate] = now.Format(time.RFC1123)
		err = sls.NewSignerV1(c.AccessKeyID, c.AccessKeySecret).Sign(http.MethodPost, uri, h, body)
	}
	if err != nil {
		return nil, sls.NewClientError(err)
	}
	req, err := http.NewRequest(http.MethodPost, baseURL+uri, nil)
	if err != nil {
		return nil, sls.NewClientError(err)
	}
	// What NewRequest sets for a bytes.Reader (the SDK's body): the
	// length, and GetBody for a retry on a fresh connection.
	req.Body, req.ContentLength = st.newBody(), int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return st.newBody(), nil }
	for k, v := range h {
		req.Header.Add(k, v)
	}
	return req, nil
}

// do sends req and reads SLS's answer into the SDK's errors.
func (p *clientPool) do(req *http.Request) error {
	resp, err := p.http.Do(req)
	if err != nil {
		return sls.NewClientError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		// Read to the end, so the connection is reused. A failure here
		// is what PostRawLogs returns (errors.go readResponseError).
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return fmt.Errorf("fail to read response body: %w", err)
		}
		return nil
	}
	buf, err := io.ReadAll(resp.Body)
	if err != nil {
		return sls.NewClientError(sls.NewBadResponseError(err.Error(), resp.Header, resp.StatusCode))
	}
	se := &sls.Error{HTTPCode: int32(resp.StatusCode)}
	if err := json.Unmarshal(buf, se); err != nil {
		// As PostRawLogs: an answer that is not SLS's JSON error
		// becomes a client error.
		return sls.NewClientError(sls.NewBadResponseError(string(buf), resp.Header, resp.StatusCode))
	}
	se.RequestID = resp.Header.Get(sls.RequestIDHeader)
	return se
}

// putGMT is the zone of the Date headers, as the SDK's (signature.go).
var putGMT = time.FixedZone("GMT", 0)
