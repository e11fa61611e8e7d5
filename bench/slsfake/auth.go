package slsfake

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The SDK (v0.1.120) signs with v1 unless told otherwise: Client.AuthVersion
// defaults to v1, and only CreateNormalInterfaceV2 on an "-acdr-ut-" region
// endpoint switches to v4. Both are verified here; v0 (no signature) is
// refused as real SLS refuses it.
const (
	authPrefixV1 = "LOG "
	authPrefixV4 = "SLS4-HMAC-SHA256 "
	// emptySHA256 is what the SDK sends as x-log-content-sha256 when it
	// chose not to hash the body (and for an empty body).
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

func unauthorized(msg string) *APIError {
	return &APIError{Status: http.StatusUnauthorized, Code: "Unauthorized", Message: msg}
}

func badRequest(code, msg string) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: code, Message: msg}
}

// authenticate verifies the request's signature and time, and returns the
// AccessKey that signed it.
//
// An AccessKey id the stand-in does not know is answered 401 Unauthorized
// "AccessKeyId not found: <id>", and a right id with a wrong secret 401
// SignatureNotMatch, as the common error codes page lists them
// (https://www.alibabacloud.com/help/en/sls/developer-reference/error-codes;
// its 401 InvalidAccessKeyId is for an id that is malformed, which the SDK
// never sends).
func (s *Server) authenticate(r *http.Request, body []byte, now time.Time) (*accessKey, *APIError) {
	if r.Header.Get("x-log-apiversion") == "" {
		return nil, badRequest("MissingAPIVersion", "x-log-apiversion does not exist in http header")
	}
	if md5h := r.Header.Get("Content-MD5"); md5h != "" {
		// The SDK sends the MD5 as upper-case hex, not base64 as RFC 1864
		// says; SLS follows the SDK.
		if sum := md5.Sum(body); !strings.EqualFold(md5h, hex.EncodeToString(sum[:])) {
			return nil, badRequest("InvalidContentMD5", "Content-MD5 does not match the body")
		}
	}
	auth := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(auth, authPrefixV1) && s.cfg.RequireV4:
		return nil, requireV4(s.cfg.Region)
	case strings.HasPrefix(auth, authPrefixV1):
		return s.verifyV1(r, strings.TrimPrefix(auth, authPrefixV1), now)
	case strings.HasPrefix(auth, authPrefixV4):
		return s.verifyV4(r, strings.TrimPrefix(auth, authPrefixV4), body, now)
	case auth == "":
		return nil, unauthorized("no Authorization header: anonymous requests are not allowed")
	default:
		return nil, unauthorized("Authorization header is neither LOG (v1) nor SLS4-HMAC-SHA256 (v4)")
	}
}

func (s *Server) lookupKey(id string) (*accessKey, *APIError) {
	k, ok := s.keys[id]
	if !ok {
		return nil, unauthorized("AccessKeyId not found: " + id)
	}
	return k, nil
}

func (s *Server) checkTime(t time.Time, now time.Time, header string) *APIError {
	if s.cfg.TimeWindow < 0 {
		return nil
	}
	if d := now.Sub(t); d > s.cfg.TimeWindow || -d > s.cfg.TimeWindow {
		return badRequest("RequestTimeExpired", fmt.Sprintf("Request time %s has been expired while server time is %s.",
			header, now.UTC().Format(http.TimeFormat)))
	}
	return nil
}

// verifyV1 checks "LOG <akid>:<base64 hmac-sha1>" over
//
//	VERB \n Content-MD5 \n Content-Type \n Date \n
//	CanonicalizedLOGHeaders \n CanonicalizedResource
//
// where the headers are every x-log-* and x-acs-* header, lower-cased,
// "name:value" sorted by name and joined by \n, and the resource is the
// escaped path, then "?" and the decoded query parameters sorted by name
// ("k=v" joined by &), as the SDK's SignerV1 builds it.
func (s *Server) verifyV1(r *http.Request, cred string, now time.Time) (*accessKey, *APIError) {
	i := strings.LastIndexByte(cred, ':')
	if i <= 0 {
		return nil, unauthorized("Authorization header is not LOG <AccessKeyId>:<Signature>")
	}
	id, sig := cred[:i], cred[i+1:]
	key, aerr := s.lookupKey(id)
	if aerr != nil {
		return nil, aerr
	}
	date := r.Header.Get("Date")
	if date == "" {
		return nil, badRequest("MissingDate", "Date does not exist in http header")
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return nil, badRequest("InvalidDateFormat", fmt.Sprintf("Date %s must follow RFC822.", date))
	}
	if aerr := s.checkTime(t, now, date); aerr != nil {
		return nil, aerr
	}
	if m := r.Header.Get("x-log-signaturemethod"); m != "" && m != "hmac-sha1" {
		return nil, badRequest("InvalidSignatureMethod", fmt.Sprintf("signature method %s is unsupported", m))
	}

	var b strings.Builder
	b.WriteString(r.Method + "\n")
	b.WriteString(r.Header.Get("Content-MD5") + "\n")
	b.WriteString(r.Header.Get("Content-Type") + "\n")
	b.WriteString(date + "\n")
	var names []string
	values := make(map[string]string)
	for name, vs := range r.Header {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, "x-log-") || strings.HasPrefix(l, "x-acs-") {
			names = append(names, l)
			values[l] = strings.TrimSpace(strings.Join(vs, ","))
		}
	}
	sort.Strings(names)
	for i, n := range names {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(n + ":" + values[n])
	}
	b.WriteByte('\n')
	b.WriteString(r.URL.EscapedPath())
	if r.URL.RawQuery != "" {
		q := r.URL.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('?')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte('&')
			}
			for _, v := range q[k] {
				b.WriteString(k + "=" + v)
			}
		}
	}
	mac := hmac.New(sha1.New, []byte(key.cfg.Secret))
	mac.Write([]byte(b.String()))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) != 1 {
		return nil, &APIError{Status: http.StatusUnauthorized, Code: "SignatureNotMatch",
			Message: fmt.Sprintf("Signature %s not matched.", sig)}
	}
	return key, nil
}

// verifyV4 checks "SLS4-HMAC-SHA256 Credential=<akid>/<date>/<region>/sls/
// aliyun_v4_request,Signature=<hex>" as the SDK's SignerV4 builds it: an
// HMAC-SHA256 chain from "aliyun_v4"+secret over date, region, "sls" and
// "aliyun_v4_request" signs a canonical request made of the method, escaped
// path, percent-encoded sorted query, the x-log-*/x-acs-*/host/content-type
// headers, their names, and the body's SHA-256 (x-log-content-sha256).
func (s *Server) verifyV4(r *http.Request, cred string, body []byte, now time.Time) (*accessKey, *APIError) {
	var credential, sig string
	for _, part := range strings.Split(cred, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "Signature":
			sig = v
		}
	}
	scopeParts := strings.Split(credential, "/")
	if len(scopeParts) != 5 || sig == "" || scopeParts[3] != "sls" || scopeParts[4] != "aliyun_v4_request" {
		return nil, unauthorized("Authorization header is not a valid SLS4-HMAC-SHA256 credential")
	}
	id, day, region := scopeParts[0], scopeParts[1], scopeParts[2]
	key, aerr := s.lookupKey(id)
	if aerr != nil {
		return nil, aerr
	}
	dateTime := r.Header.Get("x-log-date")
	t, err := time.Parse("20060102T150405Z", dateTime)
	if err != nil {
		return nil, badRequest("InvalidDateFormat", fmt.Sprintf("x-log-date %q is not yyyyMMddTHHmmssZ", dateTime))
	}
	if aerr := s.checkTime(t, now, dateTime); aerr != nil {
		return nil, aerr
	}
	if day != dateTime[:8] {
		return nil, unauthorized("credential scope date does not match x-log-date")
	}
	if s.cfg.Region != "" && region != s.cfg.Region {
		return nil, unauthorized(fmt.Sprintf("credential scope region %s is not %s", region, s.cfg.Region))
	}
	payload := r.Header.Get("x-log-content-sha256")
	if payload == "" {
		return nil, badRequest("MissingContentSha256", "x-log-content-sha256 does not exist in http header")
	}
	if payload != emptySHA256 {
		if sum := sha256.Sum256(body); payload != hex.EncodeToString(sum[:]) {
			return nil, badRequest("InvalidContentSha256", "x-log-content-sha256 does not match the body")
		}
	}

	headers := map[string]string{"host": r.Host}
	for name, vs := range r.Header {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, "x-log-") && !strings.HasPrefix(l, "x-log-meta-") ||
			strings.HasPrefix(l, "x-acs-") || l == "content-type" {
			headers[l] = strings.Join(vs, ",")
		}
	}
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	sort.Strings(names)
	var canon strings.Builder
	canon.WriteString(r.Method + "\n" + r.URL.EscapedPath() + "\n")
	q := r.URL.Query()
	qkeys := make([]string, 0, len(q))
	for k := range q {
		qkeys = append(qkeys, k)
	}
	sort.Strings(qkeys)
	for i, k := range qkeys {
		if i > 0 {
			canon.WriteByte('&')
		}
		canon.WriteString(k)
		if v := strings.ReplaceAll(url.QueryEscape(q.Get(k)), "+", "%20"); v != "" {
			canon.WriteString("=" + v)
		}
	}
	canon.WriteByte('\n')
	for _, n := range names {
		canon.WriteString(n + ":" + headers[n] + "\n")
	}
	canon.WriteString("\n" + strings.Join(names, ";") + "\n" + payload)

	scope := day + "/" + region + "/sls/aliyun_v4_request"
	canonSum := sha256.Sum256([]byte(canon.String()))
	toSign := "SLS4-HMAC-SHA256\n" + dateTime + "\n" + scope + "\n" + hex.EncodeToString(canonSum[:])
	k := []byte("aliyun_v4" + key.cfg.Secret)
	for _, part := range []string{day, region, "sls", "aliyun_v4_request"} {
		k = hmacSHA256(k, part)
	}
	want := hex.EncodeToString(hmacSHA256(k, toSign))
	if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) != 1 {
		return nil, &APIError{Status: http.StatusUnauthorized, Code: "SignatureNotMatch",
			Message: fmt.Sprintf("Signature %s not matched.", sig)}
	}
	return key, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

// requireV4 answers a v1 signature in a region that takes only v4. Which
// regions those are, and SLS's words, are not documented: the SDK switches
// to v4 by itself for "-acdr-ut-" regions (aliyun-log-go-sdk client.go
// setSignV4IfInAcdr) and iLogtail's SLS client has an error code
// SignV4RegionRequired (its own, client side). 401 Unauthorized is the
// stand-in's choice, the status SLS gives every other signature it will
// not take; CONTRACT.md marks it uncertain.
func requireV4(region string) *APIError {
	return unauthorized(fmt.Sprintf("region %s requires signature v4 (SLS4-HMAC-SHA256); v1 (LOG) is not accepted", region))
}
