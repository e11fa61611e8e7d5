package shardwriter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/slsrelay/slsrelay/wal"
)

// Write proofs: a (key, Logstore) pair is acknowledged only once SLS has
// accepted a write signed with the key. A read (GetLogStore, ListShards)
// proves nothing: SLS checks log:PostLogStoreLogs on PutLogs alone, and a
// key that may read but not write gets 401 "denied by sts or ram, action:
// log:PostLogStoreLogs" there (SLS's Kafka endpoint answers
// TopicAuthorizationException, "no write permission":
// https://help.aliyun.com/en/sls/use-the-kafka-protocol-to-upload-logs).

// proofOptions are the writers' settings a proof's LogGroups are built
// with, so the proof sends what a writer would have sent.
type proofOptions struct {
	convert       ConvertOptions
	limits        LogGroupLimits
	topic, source string
	compress      int
	// clock is SLS's, as the writers estimate it (nil outside a
	// Service): a proof's logs are re-timed against it as a writer's are.
	clock *slsClock
}

// WriteProven implements engine.Catalog: whether SLS accepted a write of
// cred to logstore (in this run, or in an earlier one per the state file)
// and no write was refused since. One map lookup for a pair in memory;
// for a pair from the state file, an HMAC on first use.
func (c *Catalog) WriteProven(project string, cred wal.Credential, logstore string) bool {
	k := authKey{project, logstore, cred}
	if _, ok := c.proven.Load(k); ok {
		return true
	}
	h := c.pairHash(k)
	c.mu.Lock()
	_, ok := c.state.Proven[h]
	c.mu.Unlock()
	if ok {
		c.proven.Store(k, struct{}{})
	}
	return ok
}

// ProveWrite implements engine.Catalog: it converts e as a writer would and
// sends it to partition k.Partition's shard with PutLogs signed with
// e.Credential, then returns SLS's verdict. On 200 the pair is proven
// (persisted) and the caller stores e flagged Delivered. A refusal of the
// key (401, 403 other than a quota) is TOPIC_AUTHORIZATION_FAILED and is
// remembered for DenyTTL; a missing Project or Logstore
// UNKNOWN_TOPIC_OR_PARTITION; data SLS refuses for good (400)
// INVALID_RECORD. The network, 5xx and quotas give a plain error, which
// the front end answers as retriable. A batch larger than one LogGroup
// takes several requests; if a later one fails, the earlier ones are
// delivered again when the producer retries (at least once).
func (c *Catalog) ProveWrite(ctx context.Context, k wal.StreamKey, e *wal.Entry) error {
	pair := authKey{k.Project, k.Logstore, e.Credential}
	if err := c.deniedErr(pair); err != nil {
		return err
	}
	conv := NewConverter(c.proof.convert)
	g := NewLogGroupBuilder(c.proof.limits)
	send := func(g *LogGroupBuilder) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return c.putProof(k, e.Credential, g)
	}
	_, err := conv.Convert(g, e, time.Now(), send)
	if err == nil && g.Logs() > 0 {
		err = send(g)
	}
	if err != nil {
		return c.proofError(pair, err)
	}
	c.proved(pair)
	return nil
}

// putProof sends g's LogGroup to k's shard, once more after a fresh shard
// list if SLS says the shard is gone (split or merged).
func (c *Catalog) putProof(k wal.StreamKey, cred wal.Credential, g *LogGroupBuilder) error {
	// SLS refuses the whole request for one log outside its time window
	// on its own clock (sendtime.go).
	retimeForSLS(g, c.proof.clock)
	raw := g.Bytes(c.proof.topic, c.proof.source, nil)
	var err error
	for _, refresh := range []bool{false, true} {
		var hashKey string
		if hashKey, err = c.routeKey(k.Project, k.Logstore, k.Partition, cred, refresh); err != nil {
			return err
		}
		t0 := time.Now()
		err = c.clients.get(cred).PostRawLogWithCompressType(k.Project, k.Logstore, raw, c.proof.compress, &hashKey)
		slsRequestDuration.UpdateDuration(t0)
		if err == nil {
			slsRequestsOK.Inc()
			logsOut.Add(g.Logs())
			rawBytesOut.Add(len(raw))
			if c.stats != nil {
				c.stats.LogGroups.Add(1)
				c.stats.Logs.Add(int64(g.Logs()))
				c.stats.RawBytes.Add(int64(len(raw)))
			}
			return nil
		}
		rule, _ := ruleFor(err)
		countSLSError(errorCode(err), rule)
		if rule != ruleShardGone {
			break
		}
	}
	return err
}

// proofError turns a failed proof into the producer's answer.
func (c *Catalog) proofError(pair authKey, err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) { // from the shard list: already the answer
		return err
	}
	if kafkaErr := kafkaError(err); kafkaErr != err {
		if errors.Is(kafkaErr, kerr.TopicAuthorizationFailed) {
			c.refused(pair, kafkaErr, err)
		} else {
			c.deny(pair, kafkaErr)
		}
		return kafkaErr
	}
	if errors.Is(err, ErrUndecodable) {
		return fmt.Errorf("%v: %w", err, kerr.InvalidRecord)
	}
	if rule, reason := ruleFor(err); rule.verdict == deadLetter || rule.verdict == split {
		// SLS refuses this data for good: acknowledging it would only
		// make a dead letter. Producers do not retry INVALID_RECORD.
		return fmt.Errorf("%s: %w", reason, kerr.InvalidRecord)
	}
	return fmt.Errorf("cannot deliver the first batch of AccessKey %s to %s/%s: %w", pair.cred.AccessKeyID, pair.project, pair.logstore, err)
}

// proved records that SLS accepted a write of pair, in memory and in the
// state file.
func (c *Catalog) proved(pair authKey) {
	if _, ok := c.proven.Load(pair); ok {
		return
	}
	h := c.pairHash(pair)
	c.mu.Lock()
	delete(c.denied, pair)
	delete(c.warned, pair)
	c.state.Proven[h] = provenPair{Project: pair.project, Logstore: pair.logstore, AccessKeyID: pair.cred.AccessKeyID, At: time.Now()}
	c.mu.Unlock()
	c.proven.Store(pair, struct{}{})
	c.log.Info("AccessKey write proven", "access_key_id", pair.cred.AccessKeyID, "project", pair.project, "logstore", pair.logstore)
	c.save()
}

// WriteDenied is what a writer calls when SLS refuses a PutLogs signed with
// cred for project/logstore because of the key (401 "denied by sts or ram,
// action: log:PostLogStoreLogs", or a key no longer valid): the pair
// answers TOPIC_AUTHORIZATION_FAILED to new requests at once (for DenyTTL,
// then the next batch tries SLS again), its proof is forgotten here and in
// the state file, slsrelay_write_denied_total{access_key_id,project,
// logstore} counts the refusal, and one line is logged per pair until a
// write is proven again (ProveWrite's own refusals are handled alike).
// err is SLS's answer; it must not hold the secret (SLS's never does).
// Safe for concurrent use.
func (c *Catalog) WriteDenied(project, logstore string, cred wal.Credential, err error) {
	pair := authKey{project, logstore, cred}
	refusal := kafkaError(err)
	if !errors.Is(refusal, kerr.TopicAuthorizationFailed) {
		refusal = fmt.Errorf("%w: %w", err, kerr.TopicAuthorizationFailed)
	}
	c.refused(pair, refusal, err)
}

// refused turns pair to refusal: no proof (in memory or the state file),
// refused for DenyTTL, counted, logged once until a write is proven again.
// err is SLS's answer.
func (c *Catalog) refused(pair authKey, refusal, err error) {
	c.proven.Delete(pair)
	h := c.pairHash(pair)
	c.mu.Lock()
	_, persisted := c.state.Proven[h]
	delete(c.state.Proven, h)
	delete(c.readOK, pair)
	c.denied[pair] = authAnswer{err: refusal, at: time.Now()}
	c.sweepLocked()
	first := !c.warned[pair]
	c.warned[pair] = true
	c.mu.Unlock()
	writeDenied(pair).Inc()
	if first {
		c.log.Warn("SLS refused a write: the AccessKey may not write this Logstore; its producers get TOPIC_AUTHORIZATION_FAILED",
			"access_key_id", pair.cred.AccessKeyID, "project", pair.project, "logstore", pair.logstore, "err", err)
	}
	if persisted {
		c.save()
	}
}

// deny remembers SLS's refusal of pair for DenyTTL.
func (c *Catalog) deny(pair authKey, err error) {
	c.mu.Lock()
	c.denied[pair] = authAnswer{err: err, at: time.Now()}
	c.sweepLocked()
	c.mu.Unlock()
}

// sweepAt is the size past which expired refusals and reads are dropped:
// producers asking for made-up Logstores must not grow them for ever.
const sweepAt = 1 << 14

// sweepLocked drops expired entries of denied and readOK once one of them
// has grown past sweepAt. c.mu must be held.
func (c *Catalog) sweepLocked() {
	if len(c.denied) < sweepAt && len(c.readOK) < sweepAt {
		return
	}
	for k, a := range c.denied {
		if time.Since(a.at) >= c.opts.DenyTTL {
			delete(c.denied, k)
		}
	}
	for k, at := range c.readOK {
		if time.Since(at) >= c.opts.AuthTTL {
			delete(c.readOK, k)
		}
	}
}

// deniedErr returns SLS's refusal of pair if it is recent.
func (c *Catalog) deniedErr(pair authKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.denied[pair]
	if !ok {
		return nil
	}
	if time.Since(a.at) >= c.opts.DenyTTL {
		delete(c.denied, pair)
		return nil
	}
	return a.err
}

var writeDeniedCounters sync.Map // authKey without secret → *metrics.Counter

// writeDenied returns the refusal counter of pair, labelled by key id
// (never the secret), project and logstore.
func writeDenied(pair authKey) *metrics.Counter {
	k := authKey{project: pair.project, logstore: pair.logstore, cred: wal.Credential{AccessKeyID: pair.cred.AccessKeyID}}
	if v, ok := writeDeniedCounters.Load(k); ok {
		return v.(*metrics.Counter)
	}
	name := fmt.Sprintf(`slsrelay_write_denied_total{access_key_id=%q,project=%q,logstore=%q}`, k.cred.AccessKeyID, k.project, k.logstore)
	v, _ := writeDeniedCounters.LoadOrStore(k, metrics.GetOrCreateCounter(name))
	return v.(*metrics.Counter)
}
