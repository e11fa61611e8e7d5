package shardwriter

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/twmb/franz-go/pkg/kerr"
	"golang.org/x/sync/singleflight"

	"github.com/slsrelay/slsrelay/wal"
)

// Catalog answers the front end's questions from SLS: how many readwrite
// shards a Logstore has (ListShards, signed with the producer's key), and
// whether that key may write it. It implements engine.Catalog.
//
// Write permission is proven, never assumed from a read: the first batch
// of a (key, Logstore) pair is delivered by ProveWrite before it is
// acknowledged, and only SLS's 200 to it makes the pair proven
// (writeproof.go). Proofs are kept in memory and, as salted hashes, in a
// state file, so Produce keeps working while SLS is unreachable and after
// a restart during an outage; a refused write (WriteDenied, from the
// writers) takes the proof away. Shard lists are cached and persisted too.
// A refusal is cached for a short time only, so a fixed key starts
// working quickly. Safe for concurrent use.
type Catalog struct {
	clients *clientPool
	opts    CatalogOptions
	proof   proofOptions
	stats   *Stats // the Service's counters; nil outside a Service
	log     *slog.Logger
	flight  singleflight.Group

	// proven holds the pairs (authKey) SLS accepted a write of, in this
	// run or (once asked about) per the state file: the Produce path's
	// one lookup.
	proven sync.Map

	saveMu sync.Mutex // one writer of the state file at a time
	// mu protects the fields below.
	mu         sync.Mutex
	refreshing map[string]bool       // background refreshes under way
	readOK     map[authKey]time.Time // pairs whose ListShards SLS answered (the key may read)
	denied     map[authKey]authAnswer
	warned     map[authKey]bool // pairs whose write refusal was logged
	shards     map[storeKey]*shardList
	state      persistedState
}

// CatalogOptions configures a Catalog.
type CatalogOptions struct {
	// StateFile keeps shard lists and proven keys (as salted hashes,
	// never secrets) across restarts. Empty: nothing is persisted.
	StateFile string
	// AuthTTL is how long a key's successful read (ListShards) lets
	// Metadata answer for a Logstore it has not yet written. Default
	// 10 min. Writes are not governed by it: see ProveWrite.
	AuthTTL time.Duration
	// DenyTTL is how long a key SLS refused stays refused before SLS is
	// asked again. Default 30 s.
	DenyTTL time.Duration
	// ShardRefresh is how often a Logstore's shard list is re-read (shards
	// split and merge). Default 60 s.
	ShardRefresh time.Duration
	Logger       *slog.Logger
}

type authKey struct {
	project, logstore string
	cred              wal.Credential
}

type authAnswer struct {
	err error
	at  time.Time
}

type storeKey struct{ project, logstore string }

// shardList is a Logstore's readwrite shards in shard-id order: partition
// i is shards[i].
type shardList struct {
	Shards  []shardInfo `json:"shards"`
	Fetched time.Time   `json:"fetched"`
}

type shardInfo struct {
	ID       int    `json:"id"`
	BeginKey string `json:"begin_key"`
}

// persistedState is the state file.
type persistedState struct {
	// Salt keys the HMAC that hides secrets.
	Salt string `json:"salt"`
	// Proven maps HMAC(project, logstore, key id, secret) to the pair SLS
	// accepted a write of. Earlier versions kept "verified" keys here,
	// proven by a read (GetLogStore); they are ignored, not trusted.
	Proven map[string]provenPair `json:"write_proven"`
	Shards map[string]shardList  `json:"shards"`
}

// provenPair names a proven pair (the key by id only), so that Topics can
// list the Logstores a key writes after a restart.
type provenPair struct {
	Project     string    `json:"project"`
	Logstore    string    `json:"logstore"`
	AccessKeyID string    `json:"access_key_id"`
	At          time.Time `json:"at"`
}

func newCatalog(clients *clientPool, o *Options) (*Catalog, error) {
	co := o.Catalog
	if co.AuthTTL == 0 {
		co.AuthTTL = 10 * time.Minute
	}
	if co.DenyTTL == 0 {
		co.DenyTTL = 30 * time.Second
	}
	if co.ShardRefresh == 0 {
		co.ShardRefresh = time.Minute
	}
	if co.Logger == nil {
		co.Logger = slog.Default()
	}
	c := &Catalog{
		clients: clients, opts: co, log: co.Logger,
		proof:  proofOptions{convert: o.Convert, limits: o.LogGroup, topic: o.Topic, source: o.Source, compress: o.compressType()},
		readOK: map[authKey]time.Time{}, denied: map[authKey]authAnswer{}, warned: map[authKey]bool{},
		shards: map[storeKey]*shardList{}, refreshing: map[string]bool{},
	}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// Partitions implements engine.Catalog. A pair refused lately gets that
// refusal; a pair not proven needs SLS to answer ListShards signed with
// the key (once per AuthTTL), so Metadata tells a wrong key at once. A
// proven pair is answered from the cache whatever SLS's state.
func (c *Catalog) Partitions(ctx context.Context, project string, cred wal.Credential, logstore string) (int32, error) {
	if !c.WriteProven(project, cred, logstore) { // a refusal takes the proof away
		k := authKey{project, logstore, cred}
		if err := c.deniedErr(k); err != nil {
			return 0, err
		}
		if err := c.readCheck(k); err != nil {
			return 0, err
		}
	}
	l, err := c.shardList(project, logstore, cred, false)
	if err != nil {
		return 0, err
	}
	return int32(len(l.Shards)), nil
}

// Topics implements engine.Catalog: the Logstores of project the key has
// been seen to use (proven by a write, now or per the state file, or read
// lately), never an error.
//
// It does not call ListLogStores: SLS's documented RAM policy for its
// Kafka endpoint grants log:GetProject, log:GetLogStore, log:ListShards
// and log:PostLogStoreLogs only
// (https://help.aliyun.com/en/sls/use-the-kafka-protocol-to-upload-logs),
// so with it every all-topics Metadata (sarama-based shippers send one
// every 10 minutes per client) would cost a refused request; a key that
// may list would get Logstores it may not write; and the answer would
// fail during an outage. Producers ask for their topics by name before
// producing, which Partitions answers.
func (c *Catalog) Topics(_ context.Context, project string, cred wal.Credential) ([]string, error) {
	seen := map[string]bool{}
	c.proven.Range(func(k, _ any) bool {
		if ak := k.(authKey); ak.project == project && ak.cred == cred {
			seen[ak.logstore] = true
		}
		return true
	})
	c.mu.Lock()
	for k, at := range c.readOK {
		if k.project == project && k.cred == cred && time.Since(at) < c.opts.AuthTTL {
			seen[k.logstore] = true
		}
	}
	var fromFile []string
	for _, p := range c.state.Proven {
		if p.Project == project && p.AccessKeyID == cred.AccessKeyID && !seen[p.Logstore] {
			fromFile = append(fromFile, p.Logstore)
		}
	}
	c.mu.Unlock()
	for _, ls := range fromFile {
		if c.WriteProven(project, cred, ls) { // the secret matches too
			seen[ls] = true
		}
	}
	names := make([]string, 0, len(seen))
	for ls := range seen {
		names = append(names, ls)
	}
	sort.Strings(names)
	return names, nil
}

// readCheck asks SLS, once per AuthTTL, to list k's shards with k's key:
// the key is valid and may see the Logstore (a read, which proves nothing
// about writing). The answer also refreshes the cached shard list.
func (c *Catalog) readCheck(k authKey) error {
	c.mu.Lock()
	at, ok := c.readOK[k]
	c.mu.Unlock()
	if ok && time.Since(at) < c.opts.AuthTTL {
		return nil
	}
	_, err := c.listShards(storeKey{k.project, k.logstore}, k.cred, c.pairFlight(k))
	if err == nil {
		c.mu.Lock()
		c.readOK[k] = time.Now()
		c.sweepLocked()
		c.mu.Unlock()
		return nil
	}
	if ke := kafkaError(err); ke != err {
		c.deny(k, ke)
		return ke
	}
	return fmt.Errorf("cannot check AccessKey %s for %s/%s with SLS: %w", k.cred.AccessKeyID, k.project, k.logstore, err)
}

// inBackground runs fn unless a run under the same name is under way, so
// that stale answers are refreshed once, not once per request.
func (c *Catalog) inBackground(name string, fn func()) {
	c.mu.Lock()
	if c.refreshing[name] {
		c.mu.Unlock()
		return
	}
	c.refreshing[name] = true
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			delete(c.refreshing, name)
			c.mu.Unlock()
		}()
		fn()
	}()
}

// shardList returns logstore's readwrite shards. A fresh list comes from
// the cache; a stale one too, while a background ListShards refreshes it;
// with no list, or with refresh (a write found its shard gone), it waits
// for SLS. When SLS cannot answer, a stale list serves.
func (c *Catalog) shardList(project, logstore string, cred wal.Credential, refresh bool) (*shardList, error) {
	k := storeKey{project, logstore}
	c.mu.Lock()
	l := c.shards[k]
	c.mu.Unlock()
	if l != nil && !refresh {
		if time.Since(l.Fetched) >= c.opts.ShardRefresh {
			c.inBackground(shardsFlight(k), func() { _, _ = c.listShards(k, cred, shardsFlight(k)) })
		}
		return l, nil
	}
	// Under the key's own flight: SLS's answer to ListShards may be about
	// the key (deleted, disabled, not allowed), and a writer that got
	// another key's refusal would dead-letter its own logs for it.
	nl, err := c.listShards(k, cred, c.pairFlight(authKey{project, logstore, cred}))
	if err != nil {
		if ke := kafkaError(err); ke != err {
			return nil, errors.Join(ke, err) // SLS's own error too: the writers classify it
		}
		if l != nil {
			return l, nil
		}
		return nil, fmt.Errorf("cannot list shards of %s/%s: %w", project, logstore, err)
	}
	return nl, nil
}

func shardsFlight(k storeKey) string { return "shards\x00" + k.project + "\x00" + k.logstore }

// pairFlight names the ListShards flight of one key: only callers with
// the same key share its answer.
func (c *Catalog) pairFlight(k authKey) string { return "key\x00" + c.pairHash(k) }

// listShards asks SLS for k's shards and caches the readwrite ones.
// Concurrent calls under one flight name share one request: callers that
// need the answer for their own key (readCheck, shardList) name the key's
// flight (pairFlight).
func (c *Catalog) listShards(k storeKey, cred wal.Credential, flight string) (*shardList, error) {
	v, err, _ := c.flight.Do(flight, func() (any, error) {
		shards, err := c.clients.get(cred).ListShards(k.project, k.logstore)
		if err != nil {
			return nil, err
		}
		nl := &shardList{Fetched: time.Now()}
		for _, s := range shards {
			if s.Status == "readwrite" {
				nl.Shards = append(nl.Shards, shardInfo{ID: s.ShardID, BeginKey: s.InclusiveBeginKey})
			}
		}
		sort.Slice(nl.Shards, func(i, j int) bool { return nl.Shards[i].ID < nl.Shards[j].ID })
		if len(nl.Shards) == 0 {
			return nil, fmt.Errorf("logstore %s/%s has no readwrite shard", k.project, k.logstore)
		}
		return nl, nil
	})
	if err != nil {
		if errors.Is(kafkaError(err), kerr.UnknownTopicOrPartition) {
			// (A key SLS refuses says nothing about the list other
			// keys use.)
			c.logstoreGone(k)
		}
		return nil, err
	}
	nl := v.(*shardList)
	c.mu.Lock()
	old := c.shards[k]
	changed := old == nil || !sameShards(old.Shards, nl.Shards)
	c.shards[k] = nl
	c.state.Shards[k.project+"/"+k.logstore] = *nl
	c.mu.Unlock()
	if changed {
		if old != nil {
			c.log.Info("shards changed", "project", k.project, "logstore", k.logstore, "readwrite_shards", len(nl.Shards))
		}
		c.save()
	}
	return nl, nil
}

// logstoreGone forgets k's shard list when SLS said the Project or
// Logstore does not exist (404 ProjectNotExist, LogStoreNotExist: to
// ListShards, or to a writer's PutLogs), so that the next Partitions asks
// SLS and gets its answer, UNKNOWN_TOPIC_OR_PARTITION, instead of the
// cached list acknowledging batches that can only become dead letters.
func (c *Catalog) logstoreGone(k storeKey) {
	c.mu.Lock()
	delete(c.shards, k)
	delete(c.state.Shards, k.project+"/"+k.logstore)
	c.mu.Unlock()
}

// routeKey returns the hash key that sends a write of partition p to its
// shard. When the shard has become readonly (split or merge), SLS routes
// the key to the readwrite shard that now holds its range, so nothing is
// lost while the list catches up; a partition beyond the current count
// (after a merge) wraps around.
func (c *Catalog) routeKey(project, logstore string, p int32, cred wal.Credential, refresh bool) (string, error) {
	l, err := c.shardList(project, logstore, cred, refresh)
	if err != nil {
		return "", err
	}
	return l.Shards[int(p)%len(l.Shards)].BeginKey, nil
}

func sameShards(a, b []shardInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// kafkaError maps SLS's answer to the Kafka error the shipper sees, by
// the writers' error table (classify.go, KafkaErrorOf): a key SLS refuses,
// for good or for now, is TOPIC_AUTHORIZATION_FAILED, a missing Project or
// Logstore UNKNOWN_TOPIC_OR_PARTITION. Anything else is returned as it is:
// the front end reports it as retriable.
func kafkaError(err error) error {
	var se *sls.Error
	if !errors.As(err, &se) {
		return err
	}
	switch ke := KafkaErrorOf(err); ke {
	case kerr.TopicAuthorizationFailed, kerr.UnknownTopicOrPartition:
		return fmt.Errorf("%s: %s: %w", se.Code, se.Message, ke)
	}
	return err
}

// pairHash names a pair in the state file without its secret.
func (c *Catalog) pairHash(k authKey) string {
	m := hmac.New(sha256.New, []byte(c.state.Salt))
	m.Write([]byte(k.project + "\x00" + k.logstore + "\x00" + k.cred.AccessKeyID + "\x00" + k.cred.AccessKeySecret))
	return hex.EncodeToString(m.Sum(nil))
}

func (c *Catalog) load() error {
	c.state = persistedState{Proven: map[string]provenPair{}, Shards: map[string]shardList{}}
	if c.opts.StateFile != "" {
		b, err := os.ReadFile(c.opts.StateFile)
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &c.state); err != nil {
				// A damaged cache costs a refresh, not a start.
				c.log.Warn("ignoring unreadable catalog state", "file", c.opts.StateFile, "err", err)
				c.state = persistedState{}
			}
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("cannot read catalog state %q: %w", c.opts.StateFile, err)
		}
	}
	if c.state.Proven == nil {
		c.state.Proven = map[string]provenPair{}
	}
	if c.state.Shards == nil {
		c.state.Shards = map[string]shardList{}
	}
	if c.state.Salt == "" {
		salt := make([]byte, 16)
		_, _ = rand.Read(salt)
		c.state.Salt = hex.EncodeToString(salt)
	}
	for name, l := range c.state.Shards {
		project, logstore, ok := cutStore(name)
		if ok && len(l.Shards) > 0 {
			l := l
			l.Fetched = time.Time{} // refresh at first use, serve if SLS is down
			c.shards[storeKey{project, logstore}] = &l
		}
	}
	return nil
}

func cutStore(name string) (string, string, bool) {
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			return name[:i], name[i+1:], true
		}
	}
	return "", "", false
}

// save writes the state file atomically; failures are logged, since the
// file is only a cache.
func (c *Catalog) save() {
	if c.opts.StateFile == "" {
		return
	}
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	b, err := json.MarshalIndent(&c.state, "", "  ")
	c.mu.Unlock()
	if err == nil {
		tmp := c.opts.StateFile + ".tmp"
		if err = os.MkdirAll(filepath.Dir(tmp), 0o700); err == nil {
			if err = os.WriteFile(tmp, b, 0o600); err == nil {
				err = os.Rename(tmp, c.opts.StateFile)
			}
		}
	}
	if err != nil {
		c.log.Warn("cannot save catalog state", "file", c.opts.StateFile, "err", err)
	}
}
