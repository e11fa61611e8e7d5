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

// Catalog answers the front end's questions from SLS: may this AccessKey
// write this Logstore (GetLogStore signed with it), and how many readwrite
// shards has it (ListShards). It implements engine.Catalog.
//
// Answers are cached, and the positive ones persisted to a state file, so
// Metadata and Produce keep working while SLS is briefly unreachable and
// after a restart during an outage. A key SLS refused is cached for a
// short time only, so a fixed key starts working quickly. Safe for
// concurrent use.
type Catalog struct {
	clients *clientPool
	opts    CatalogOptions
	log     *slog.Logger
	flight  singleflight.Group

	saveMu     sync.Mutex // one writer of the state file at a time
	mu         sync.Mutex
	refreshing map[string]bool // background refreshes under way
	auth       map[authKey]authAnswer
	shards     map[storeKey]*shardList
	state      persistedState
}

// CatalogOptions configures a Catalog.
type CatalogOptions struct {
	// StateFile keeps shard lists and verified keys (as salted hashes,
	// never secrets) across restarts. Empty: nothing is persisted.
	StateFile string
	// AuthTTL is how long a key SLS accepted stays accepted before it is
	// checked again. Default 10 min.
	AuthTTL time.Duration
	// DenyTTL is how long a key SLS refused stays refused. Default 30 s.
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
	err error // nil: may write
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
	// Salt keys the HMAC that hides verified secrets.
	Salt string `json:"salt"`
	// Verified holds HMAC(project, logstore, key id, secret) of keys SLS
	// accepted, so they are accepted during an outage after a restart.
	Verified map[string]time.Time `json:"verified"`
	Shards   map[string]shardList `json:"shards"`
}

func newCatalog(clients *clientPool, o CatalogOptions) (*Catalog, error) {
	if o.AuthTTL == 0 {
		o.AuthTTL = 10 * time.Minute
	}
	if o.DenyTTL == 0 {
		o.DenyTTL = 30 * time.Second
	}
	if o.ShardRefresh == 0 {
		o.ShardRefresh = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Catalog{clients: clients, opts: o, log: o.Logger, auth: map[authKey]authAnswer{}, shards: map[storeKey]*shardList{}, refreshing: map[string]bool{}}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// Partitions implements engine.Catalog.
func (c *Catalog) Partitions(ctx context.Context, project string, cred wal.Credential, logstore string) (int32, error) {
	if err := c.authorize(ctx, project, cred, logstore); err != nil {
		return 0, err
	}
	l, err := c.shardList(project, logstore, cred, false)
	if err != nil {
		return 0, err
	}
	return int32(len(l.Shards)), nil
}

// Topics implements engine.Catalog.
func (c *Catalog) Topics(ctx context.Context, project string, cred wal.Credential) ([]string, error) {
	names, err := c.clients.get(cred).ListLogStore(project)
	if err != nil {
		return nil, kafkaError(err)
	}
	sort.Strings(names)
	return names, nil
}

// authorize checks, once per AuthTTL, that SLS accepts cred for logstore.
// A key SLS accepted before (in this run or, per the state file, an
// earlier one) stays accepted while it is checked again in the background,
// so an SLS outage never stalls Metadata or Produce; only a key never seen
// waits for SLS's answer.
func (c *Catalog) authorize(ctx context.Context, project string, cred wal.Credential, logstore string) error {
	k := authKey{project, logstore, cred}
	c.mu.Lock()
	a, ok := c.auth[k]
	_, verified := c.state.Verified[c.verifiedKey(k)]
	c.mu.Unlock()
	age := time.Since(a.at)
	switch {
	case ok && a.err == nil && age < c.opts.AuthTTL, ok && a.err != nil && age < c.opts.DenyTTL:
		return a.err
	case (ok && a.err == nil) || (!ok && verified):
		c.inBackground("auth\x00"+c.verifiedKey(k), func() { _ = c.checkKey(k) })
		return nil
	}
	return c.checkKey(k)
}

// checkKey asks SLS (GetLogStore, signed with the key) and records the
// answer.
func (c *Catalog) checkKey(k authKey) error {
	_, err, _ := c.flight.Do("auth\x00"+c.verifiedKey(k), func() (any, error) {
		_, err := c.clients.get(k.cred).GetLogStore(k.project, k.logstore)
		return nil, err
	})
	now := time.Now()
	if err == nil {
		c.mu.Lock()
		c.auth[k] = authAnswer{at: now}
		c.state.Verified[c.verifiedKey(k)] = now
		c.mu.Unlock()
		c.save()
		return nil
	}
	kerrErr := kafkaError(err)
	var ke *kerr.Error
	if errors.As(kerrErr, &ke) {
		c.mu.Lock()
		c.auth[k] = authAnswer{err: kerrErr, at: now}
		delete(c.state.Verified, c.verifiedKey(k))
		c.mu.Unlock()
		return kerrErr
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
			c.inBackground("shards\x00"+project+"\x00"+logstore, func() { _, _ = c.listShards(k, cred) })
		}
		return l, nil
	}
	nl, err := c.listShards(k, cred)
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

// listShards asks SLS for k's shards and caches the readwrite ones.
func (c *Catalog) listShards(k storeKey, cred wal.Credential) (*shardList, error) {
	v, err, _ := c.flight.Do("shards\x00"+k.project+"\x00"+k.logstore, func() (any, error) {
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
		if kafkaError(err) != err {
			// SLS says the Logstore is gone or the key may not see it:
			// forget the list, so the next request gets SLS's answer.
			c.mu.Lock()
			delete(c.shards, k)
			delete(c.state.Shards, k.project+"/"+k.logstore)
			c.mu.Unlock()
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

// kafkaError maps SLS's answer to the Kafka error the shipper sees
// (DESIGN.md): a refused key is TOPIC_AUTHORIZATION_FAILED, a missing
// Project or Logstore UNKNOWN_TOPIC_OR_PARTITION. Anything else is returned
// as it is: the front end reports it as retriable.
func kafkaError(err error) error {
	var se *sls.Error
	if !errors.As(err, &se) {
		return err
	}
	switch {
	case se.Code == "ProjectNotExist" || se.Code == "LogStoreNotExist" || se.HTTPCode == 404:
		return fmt.Errorf("%s: %s: %w", se.Code, se.Message, kerr.UnknownTopicOrPartition)
	case se.HTTPCode == 401 || se.HTTPCode == 403 && se.Code != "WriteQuotaExceed" && se.Code != "ShardWriteQuotaExceed":
		return fmt.Errorf("%s: %s: %w", se.Code, se.Message, kerr.TopicAuthorizationFailed)
	}
	return err
}

func (c *Catalog) verifiedKey(k authKey) string {
	m := hmac.New(sha256.New, []byte(c.state.Salt))
	m.Write([]byte(k.project + "\x00" + k.logstore + "\x00" + k.cred.AccessKeyID + "\x00" + k.cred.AccessKeySecret))
	return hex.EncodeToString(m.Sum(nil))
}

func (c *Catalog) load() error {
	c.state = persistedState{Verified: map[string]time.Time{}, Shards: map[string]shardList{}}
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
	if c.state.Verified == nil {
		c.state.Verified = map[string]time.Time{}
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
