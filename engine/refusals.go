package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Refusal reasons: the reason label of slsrelay_refusals_total and of the
// refusal log lines. Every answer or closed connection that tells a shipper
// "no" has one, so the commonest shipper mistakes (a wrong key, an unknown
// Project or Logstore: all answered through Metadata) leave a trace.
const (
	RefusalAuthentication = "authentication"  // SASL login failed, or SASL missing
	RefusalAuthorization  = "authorization"   // the key or user may not write the Logstore
	RefusalUnknownTopic   = "unknown_topic"   // no such Logstore (or topic ID)
	RefusalUnknownProject = "unknown_project" // no such Project
	RefusalTooLarge       = "message_too_large"
	RefusalCorruptBatch   = "corrupt_batch"
	RefusalThrottle       = "throttle"
	RefusalMalformedFrame = "malformed_frame" // connection closed: not Kafka, or a broken request
	RefusalOversizedFrame = "oversized_frame" // connection closed: a frame over the limit
	RefusalProtocol       = "protocol_error"  // a request the relay does not serve, or out of order
	RefusalUnavailable    = "unavailable"     // the relay cannot answer now (catalog, WAL, memory); retried
	RefusalProxyProtocol  = "proxy_protocol"  // connection closed: not from a trusted balancer, or no valid PROXY header
)

// refusalHints say what the shipper's operator should fix, per reason.
var refusalHints = map[string]string{
	RefusalAuthentication: "check the shipper's SASL settings: security.protocol as the listener's, mechanism, username (the Project or a relay user) and password (AccessKeyId#AccessKeySecret or the user's)",
	RefusalAuthorization:  "the AccessKey or relay user may not write this Logstore: check the key, its RAM policy (log:PostLogStoreLogs) and the user's topics",
	RefusalUnknownTopic:   "the topic must name an existing Logstore of the Project: fix the topic or create the Logstore",
	RefusalUnknownProject: "the SASL username must name an existing SLS Project in the relay's region",
	RefusalTooLarge:       "lower the shipper's message or batch size below the relay's max_message_bytes",
	RefusalCorruptBatch:   "the batch failed validation (CRC, lengths, codec): check the shipper's compression setting and version",
	RefusalThrottle:       "the relay is behind (delivery backlog, WAL filling or the project's byte quota): brief throttles need nothing, lasting ones mean SLS is slow or the quota is low",
	RefusalMalformedFrame: "the peer does not speak the Kafka protocol here: wrong port, or a health check",
	RefusalOversizedFrame: "a frame over max_request_bytes (or the pre-login limit): a TLS client on a plaintext listener looks like this",
	RefusalProtocol:       "the client sent a request the relay does not serve (it only produces) or out of order: check security.protocol against the listener",
	RefusalUnavailable:    "nothing on the shipper's side: the relay's catalog, WAL or memory budget could not answer; the shipper retries",
	RefusalProxyProtocol:  "this listener takes connections only from the load balancers in proxy_protocol.trusted_cidrs, each starting with a PROXY protocol header (HAProxy: send-proxy or send-proxy-v2): connect through the balancer, or fix its settings or the trusted list",
}

// RefusalHint is what to fix for a refusal reason ("" for none known).
func RefusalHint(reason string) string { return refusalHints[reason] }

// Refusal is one refusal, as the status page lists the recent ones.
type Refusal struct {
	Time     time.Time `json:"time"`
	Listener string    `json:"listener"`
	Address  string    `json:"address"`
	ClientID string    `json:"client_id"`
	Project  string    `json:"project"`
	Reason   string    `json:"reason"`
	Detail   string    `json:"detail"`
}

// refusalLogInterval: one line per (client address, reason) per interval.
const refusalLogInterval = time.Minute

// maxRefusalKeys bounds the (address, reason) pairs remembered; past it
// lines of new pairs fall to the global limiter alone.
const maxRefusalKeys = 4096

// recentRefusals is how many refusals the status page can show.
const recentRefusals = 50

// maxProjectLabels bounds the project label of slsrelay_refusals_total: a
// SASL username is any string the client sends.
const maxProjectLabels = 200

type refusalKey struct{ host, reason string }

type refusalKeyState struct {
	logged     time.Time
	suppressed int
}

// refusalLog counts refusals, logs them once per (client address, reason)
// per interval and keeps the recent ones. Safe for concurrent use.
type refusalLog struct {
	interval time.Duration // read under mu (tests change it)
	// global bounds the lines of all clients together.
	global *logLimiter

	mu     sync.Mutex // protects keys, recent, next
	keys   map[refusalKey]*refusalKeyState
	recent [recentRefusals]Refusal
	next   int // recent[next%len] is the oldest once full
}

func newRefusalLog() *refusalLog {
	return &refusalLog{
		interval: refusalLogInterval,
		global:   &logLimiter{limit: 100, window: refusalLogInterval},
		keys:     map[refusalKey]*refusalKeyState{},
	}
}

// admit records r and reports whether its line is logged now, with how
// many lines of its (address, reason) were suppressed since the last one.
func (l *refusalLog) admit(r Refusal) (bool, int) {
	l.mu.Lock()
	l.recent[l.next%recentRefusals] = r
	l.next++
	l.mu.Unlock()
	return l.allowLine(r.Address, r.Reason, r.Time)
}

// allowLine reports whether a line about (address's host, reason) may be
// logged at now, and how many were suppressed since the last one.
func (l *refusalLog) allowLine(address, reason string, now time.Time) (bool, int) {
	l.mu.Lock()
	k := refusalKey{hostOf(address), reason}
	st := l.keys[k]
	if st == nil {
		if len(l.keys) >= maxRefusalKeys {
			l.prune(now)
		}
		if len(l.keys) < maxRefusalKeys {
			st = &refusalKeyState{}
			l.keys[k] = st
		}
	}
	suppressed := 0
	if st != nil {
		if !st.logged.IsZero() && now.Sub(st.logged) < l.interval {
			st.suppressed++
			l.mu.Unlock()
			return false, 0
		}
		st.logged, suppressed, st.suppressed = now, st.suppressed, 0
	}
	l.mu.Unlock()
	ok, globalSuppressed := l.global.allow()
	return ok, suppressed + globalSuppressed
}

// prune forgets pairs not logged within the interval. l.mu is held.
func (l *refusalLog) prune(now time.Time) {
	for k, st := range l.keys {
		if now.Sub(st.logged) >= l.interval {
			delete(l.keys, k)
		}
	}
}

// list returns the recent refusals, newest first.
func (l *refusalLog) list() []Refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(l.next, recentRefusals)
	out := make([]Refusal, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, l.recent[(l.next-i)%recentRefusals])
	}
	return out
}

// RecentRefusals returns the last refusals of this server, newest first.
func (s *Server) RecentRefusals() []Refusal { return s.refusals.list() }

var refusalCounters sync.Map // [3]string{reason, listener, project} -> *metrics.Counter

var (
	projectLabelsMu sync.Mutex // protects projectLabels
	projectLabels   = map[string]bool{}
)

// projectLabel bounds the project label's values.
func projectLabel(p string) string {
	projectLabelsMu.Lock()
	defer projectLabelsMu.Unlock()
	if projectLabels[p] {
		return p
	}
	if len(projectLabels) >= maxProjectLabels {
		return "(other)"
	}
	p = logName(p)
	projectLabels[p] = true
	return p
}

func countRefusal(reason, listener, project string) {
	k := [3]string{reason, listener, projectLabel(project)}
	v, ok := refusalCounters.Load(k)
	if !ok {
		v, _ = refusalCounters.LoadOrStore(k, metrics.GetOrCreateCounter(
			fmt.Sprintf(`slsrelay_refusals_total{reason=%q,listener=%q,project=%q}`, k[0], k[1], k[2])))
	}
	v.(*metrics.Counter).Inc()
}

// refuse counts a refusal of this connection and logs it (rate limited)
// as msg with the client's address, client.id, the detail and the hint.
// The detail must hold no secret.
func (s *session) refuse(reason, msg, detail string, attrs ...any) {
	project := ""
	if s.authenticated.Load() {
		project = s.principal.Project
	}
	countRefusal(reason, s.ln.opts.Name, project)
	r := Refusal{Time: time.Now(), Listener: s.ln.opts.Name, Address: s.peer, ClientID: s.shipper.clientIDOf(),
		Project: project, Reason: reason, Detail: detail}
	s.shipper.setLastError(r)
	ok, suppressed := s.srv.refusals.admit(r)
	if !ok {
		return
	}
	level := slog.LevelWarn
	if reason == RefusalThrottle || reason == RefusalUnavailable {
		level = slog.LevelInfo
	}
	args := []any{"listener", r.Listener, "client", r.Address, "client_id", logName(r.ClientID), "reason", reason}
	if project != "" {
		args = append(args, "project", logName(project))
	}
	args = append(args, attrs...)
	args = append(args, "detail", detail, "fix", refusalHints[reason], "suppressed_before", suppressed)
	s.srv.log.Log(context.Background(), level, msg, args...)
}

// refuseConnection counts and logs a refusal, then closes the connection;
// once only (gnet reads the buffered frames again as it closes).
func (s *session) refuseConnection(reason, format string, args ...any) {
	s.mu.Lock()
	already := s.failed
	s.mu.Unlock()
	if already {
		return
	}
	s.refuse(reason, "closing connection", fmt.Sprintf(format, args...))
	s.drop()
}

// refusalOf names the refusal a Kafka error code answers; err, the
// catalog's error if any, tells an unknown Project from an unknown
// Logstore. "" for no refusal.
func refusalOf(code int16, err error) string {
	switch code {
	case 0:
		return ""
	case kerr.TopicAuthorizationFailed.Code, kerr.TransactionalIDAuthorizationFailed.Code:
		return RefusalAuthorization
	case kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code:
		// The SLS catalog's error text starts with SLS's error code
		// (shardwriter/catalog.go kafkaError): 404 ProjectNotExist for a
		// missing Project, LogStoreNotExist for a missing Logstore
		// (https://help.aliyun.com/en/sls/api-getlogstore, error codes;
		// https://www.alibabacloud.com/help/en/sls/developer-reference/error-codes).
		if err != nil && strings.Contains(err.Error(), "ProjectNotExist") {
			return RefusalUnknownProject
		}
		return RefusalUnknownTopic
	case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code:
		return RefusalTooLarge
	case kerr.CorruptMessage.Code, kerr.InvalidRecord.Code, kerr.UnsupportedCompressionType.Code, kerr.InvalidTimestamp.Code:
		return RefusalCorruptBatch
	case kerr.InvalidRequiredAcks.Code, kerr.UnsupportedVersion.Code:
		return RefusalProtocol
	}
	return RefusalUnavailable
}

// describeCode is a Kafka error code's name, for a refusal's detail.
func describeCode(code int16) string {
	var ke *kerr.Error
	if errors.As(kerr.ErrorForCode(code), &ke) {
		return ke.Message
	}
	return fmt.Sprintf("error %d", code)
}

// hostOf is the address without its port: one client's connections
// share it.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// refusedPartition counts and logs a Produce partition's error; err is the
// catalog's for its topic, if any.
func (s *session) refusedPartition(topic string, p kmsg.ProduceResponseTopicPartition, err error) {
	reason := refusalOf(p.ErrorCode, err)
	detail := fmt.Sprintf("Produce to topic %q partition %d: %s", logName(topic), p.Partition, describeCode(p.ErrorCode))
	if p.ErrorMessage != nil { // the validation's or the write proof's error, as the client got it
		detail += ": " + withoutSignature(*p.ErrorMessage)
	} else {
		detail = withCause(detail, err)
	}
	s.refuse(reason, "refused", detail)
}

// withCause adds to a refusal's detail what the catalog said (SLS's error
// code and message, never the request's signature), less the Kafka error
// it wraps, which the detail names already.
func withCause(detail string, err error) string {
	if err == nil {
		return detail
	}
	msg := err.Error()
	var ke *kerr.Error
	if errors.As(err, &ke) {
		msg = strings.TrimSuffix(strings.TrimSuffix(msg, ke.Error()), ": ")
	}
	if msg == "" {
		return detail
	}
	msg = withoutSignature(msg)
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return detail + " (" + strings.ToValidUTF8(msg, "?") + ")"
}

// signatureInMessage finds the signature SLS quotes in its
// SignatureNotMatch message ("Signature <base64> not matched"): an HMAC of
// the request under the secret is not a secret, but a guess at one can be
// checked against it offline, so a refusal's detail leaves it out.
var signatureInMessage = regexp.MustCompile(`(Signature )\S+( not match)`)

// withoutSignature is SLS's message msg without the signature it quotes:
// what enters a refusal's detail from SLS's answers (the catalog's errors,
// the write proof's) goes through it.
func withoutSignature(msg string) string {
	return signatureInMessage.ReplaceAllString(msg, "${1}…${2}")
}

// refuseHandshake counts and logs a failed TLS handshake (a plaintext
// client on a TLS listener, an untrusted certificate), rate limited like
// every refusal.
func (s *Server) refuseHandshake(ln *listener, peer string, err error) {
	s.refuseEarly(ln, peer, RefusalMalformedFrame, "TLS handshake failed", "TLS handshake failed: "+err.Error(),
		"the client must use TLS (security.protocol SSL or SASL_SSL) and trust the relay's certificate")
}

// refuseEarly counts and logs (rate limited) the refusal of a connection
// that has no session yet: msg is the line, fix what to do about it.
func (s *Server) refuseEarly(ln *listener, peer, reason, msg, detail, fix string) {
	countRefusal(reason, ln.opts.Name, "")
	r := Refusal{Time: time.Now(), Listener: ln.opts.Name, Address: peer, Reason: reason, Detail: detail}
	if ok, suppressed := s.refusals.admit(r); ok {
		s.log.Warn(msg, "listener", ln.opts.Name, "client", peer, "reason", r.Reason, "detail", r.Detail,
			"fix", fix, "suppressed_before", suppressed)
	}
}
