package slsfake

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Key-space bounds. SLS writes the end of the last shard as 32 f's and
// treats it as the top of the MD5 space, so a key of all f's still lands in
// the last shard (see logstore.route).
const (
	minKey = "00000000000000000000000000000000"
	maxKey = "ffffffffffffffffffffffffffffffff"
)

// ShardInfo is a shard as ListShards, SplitShard and MergeShards report it;
// the JSON names are SLS's.
type ShardInfo struct {
	ID                int    `json:"shardID"`
	Status            string `json:"status"`
	InclusiveBeginKey string `json:"inclusiveBeginKey"`
	ExclusiveEndKey   string `json:"exclusiveEndKey"`
	CreateTime        int64  `json:"createTime"`
}

// logstore is the live state of one logstore. Its mutex guards the shard
// list and the quota; the stored data lives in the store.
type logstore struct {
	project string
	name    string
	ttl     int
	created time.Time

	mu     sync.Mutex
	shards []*shard // sorted by id
	quota  Quota

	lbNext atomic.Uint64 // round-robin position for /shards/lb
}

// shard is one shard's layout and its write quota buckets (guarded by the
// logstore's mutex).
type shard struct {
	ShardInfo
	bytes    tokenBucket
	requests tokenBucket
}

func newLogstore(project string, cfg LogstoreConfig, quota Quota, now time.Time) *logstore {
	ls := &logstore{project: project, name: cfg.Name, ttl: cfg.TTL, created: now, quota: quota}
	for _, sc := range cfg.Shards {
		ls.shards = append(ls.shards, &shard{ShardInfo: ShardInfo{
			ID: sc.ID, Status: sc.Status,
			InclusiveBeginKey: sc.InclusiveBeginKey, ExclusiveEndKey: sc.ExclusiveEndKey,
			CreateTime: now.Unix(),
		}})
	}
	sort.Slice(ls.shards, func(i, j int) bool { return ls.shards[i].ID < ls.shards[j].ID })
	return ls
}

// list returns a copy of the layout, sorted by shard id.
func (ls *logstore) list() []ShardInfo {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make([]ShardInfo, len(ls.shards))
	for i, sh := range ls.shards {
		out[i] = sh.ShardInfo
	}
	return out
}

// find returns the shard with the given id; the caller holds ls.mu.
func (ls *logstore) find(id int) *shard {
	for _, sh := range ls.shards {
		if sh.ID == id {
			return sh
		}
	}
	return nil
}

// readWriteCount is what GetLogStore reports as shardCount.
func (ls *logstore) readWriteCount() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	n := 0
	for _, sh := range ls.shards {
		if sh.Status == StatusReadWrite {
			n++
		}
	}
	return n
}

// route picks the readwrite shard whose range holds key (normalized hex);
// the caller holds ls.mu. Only readwrite shards take writes: after a split,
// the children cover the parent's range.
func (ls *logstore) route(key string) *shard {
	for _, sh := range ls.shards {
		if sh.Status != StatusReadWrite {
			continue
		}
		if key >= sh.InclusiveBeginKey && (key < sh.ExclusiveEndKey || sh.ExclusiveEndKey == maxKey) {
			return sh
		}
	}
	return nil
}

// pickLB picks a readwrite shard round-robin, as SLS's load balancer spreads
// keyless writes; the caller holds ls.mu.
func (ls *logstore) pickLB() *shard {
	var rw []*shard
	for _, sh := range ls.shards {
		if sh.Status == StatusReadWrite {
			rw = append(rw, sh)
		}
	}
	if len(rw) == 0 {
		return nil
	}
	return rw[ls.lbNext.Add(1)%uint64(len(rw))]
}

func (ls *logstore) nextID() int {
	id := -1
	for _, sh := range ls.shards {
		id = max(id, sh.ID)
	}
	return id + 1
}

func (ls *logstore) addShard(begin, end string, now time.Time) *shard {
	sh := &shard{ShardInfo: ShardInfo{
		ID: ls.nextID(), Status: StatusReadWrite,
		InclusiveBeginKey: begin, ExclusiveEndKey: end, CreateTime: now.Unix(),
	}}
	ls.shards = append(ls.shards, sh)
	return sh
}

// split makes shard id readonly and adds two readwrite shards covering its
// range, cut at splitKey (the midpoint when empty). It returns the three
// shards, parent first, as SLS's SplitShard answers.
func (ls *logstore) split(id int, splitKey string, now time.Time) ([]ShardInfo, *APIError) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	sh, aerr := ls.writable(id, "split")
	if aerr != nil {
		return nil, aerr
	}
	if splitKey == "" {
		splitKey = midKey(sh.InclusiveBeginKey, sh.ExclusiveEndKey)
	} else {
		k, err := normalizeKey(splitKey)
		if err != nil {
			return nil, &APIError{Status: http.StatusBadRequest, Code: "ParameterInvalid", Message: err.Error()}
		}
		splitKey = k
	}
	if splitKey <= sh.InclusiveBeginKey || splitKey >= sh.ExclusiveEndKey {
		return nil, &APIError{Status: http.StatusBadRequest, Code: "ParameterInvalid",
			Message: fmt.Sprintf("split key %s is not inside shard %d's range [%s, %s)", splitKey, id, sh.InclusiveBeginKey, sh.ExclusiveEndKey)}
	}
	sh.Status = StatusReadOnly
	a := ls.addShard(sh.InclusiveBeginKey, splitKey, now)
	b := ls.addShard(splitKey, sh.ExclusiveEndKey, now)
	return []ShardInfo{sh.ShardInfo, a.ShardInfo, b.ShardInfo}, nil
}

// writable returns readwrite shard id, or why it cannot be done (a verb:
// "split", "merged"). The caller holds ls.mu.
func (ls *logstore) writable(id int, done string) (*shard, *APIError) {
	sh := ls.find(id)
	if sh == nil {
		return nil, errShardNotExist(id)
	}
	if sh.Status != StatusReadWrite {
		return nil, &APIError{Status: http.StatusBadRequest, Code: "ParameterInvalid",
			Message: fmt.Sprintf("shard %d is readonly and cannot be %s", id, done)}
	}
	return sh, nil
}

// merge makes shard id and the readwrite shard right after it (by key)
// readonly and adds one readwrite shard covering both, as SLS's MergeShards
// does. It returns the two parents and the child.
func (ls *logstore) merge(id int, now time.Time) ([]ShardInfo, *APIError) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	sh, aerr := ls.writable(id, "merged")
	if aerr != nil {
		return nil, aerr
	}
	var next *shard
	for _, o := range ls.shards {
		if o.Status == StatusReadWrite && o.InclusiveBeginKey == sh.ExclusiveEndKey {
			next = o
		}
	}
	if next == nil {
		return nil, &APIError{Status: http.StatusBadRequest, Code: "ParameterInvalid",
			Message: fmt.Sprintf("shard %d has no adjacent readwrite shard to merge with", id)}
	}
	sh.Status, next.Status = StatusReadOnly, StatusReadOnly
	c := ls.addShard(sh.InclusiveBeginKey, next.ExclusiveEndKey, now)
	return []ShardInfo{sh.ShardInfo, next.ShardInfo, c.ShardInfo}, nil
}

func errShardNotExist(id int) *APIError {
	return &APIError{Status: http.StatusNotFound, Code: "ShardNotExist", Message: fmt.Sprintf("shard %d does not exist", id)}
}

// evenLayout splits the 128-bit key space into n equal readwrite shards.
func evenLayout(n int) []ShardConfig {
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	out := make([]ShardConfig, n)
	for i := range n {
		begin := new(big.Int).Div(new(big.Int).Mul(space, big.NewInt(int64(i))), big.NewInt(int64(n)))
		out[i] = ShardConfig{ID: i, Status: StatusReadWrite, InclusiveBeginKey: bigKey(begin)}
		if i > 0 {
			out[i-1].ExclusiveEndKey = out[i].InclusiveBeginKey
		}
	}
	out[n-1].ExclusiveEndKey = maxKey
	return out
}

// checkLayout normalizes an explicit layout and checks that its readwrite
// shards tile the key space with neither gap nor overlap, which is what
// makes routing by key unambiguous.
func checkLayout(in []ShardConfig) ([]ShardConfig, error) {
	out := append([]ShardConfig(nil), in...)
	ids := make(map[int]bool)
	var rw []ShardConfig
	for i := range out {
		s := &out[i]
		if s.ID < 0 || ids[s.ID] {
			return nil, fmt.Errorf("shard id %d is negative or repeated", s.ID)
		}
		ids[s.ID] = true
		switch s.Status {
		case "":
			s.Status = StatusReadWrite
		case StatusReadWrite, StatusReadOnly:
		default:
			return nil, fmt.Errorf("shard %d has status %q, want readwrite or readonly", s.ID, s.Status)
		}
		var err error
		if s.InclusiveBeginKey, err = normalizeKey(s.InclusiveBeginKey); err != nil {
			return nil, fmt.Errorf("shard %d: %w", s.ID, err)
		}
		if s.ExclusiveEndKey, err = normalizeKey(s.ExclusiveEndKey); err != nil {
			return nil, fmt.Errorf("shard %d: %w", s.ID, err)
		}
		if s.InclusiveBeginKey >= s.ExclusiveEndKey {
			return nil, fmt.Errorf("shard %d: begin key is not below end key", s.ID)
		}
		if s.Status == StatusReadWrite {
			rw = append(rw, *s)
		}
	}
	sort.Slice(rw, func(i, j int) bool { return rw[i].InclusiveBeginKey < rw[j].InclusiveBeginKey })
	want := minKey
	for _, s := range rw {
		if s.InclusiveBeginKey != want {
			return nil, fmt.Errorf("readwrite shards leave a gap or overlap at %s", want)
		}
		want = s.ExclusiveEndKey
	}
	if want != maxKey {
		return nil, fmt.Errorf("readwrite shards do not reach the end of the key space (%s)", want)
	}
	return out, nil
}

// normalizeKey turns a hash key into 32 lowercase hex digits, so keys
// compare as strings in numeric order. A shorter key is the high-order part
// of the 128-bit value (SLS compares keys from the left), so it is padded
// with zeros on the right.
func normalizeKey(k string) (string, error) {
	k = strings.ToLower(k)
	if k == "" || len(k) > 32 {
		return "", fmt.Errorf("hash key %q is not 1-32 hex digits", k)
	}
	for _, r := range k {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return "", fmt.Errorf("hash key %q is not hex", k)
		}
	}
	return k + minKey[len(k):], nil
}

func midKey(begin, end string) string {
	a, _ := new(big.Int).SetString(begin, 16)
	b, _ := new(big.Int).SetString(end, 16)
	return bigKey(a.Add(a, b).Rsh(a, 1))
}

func bigKey(v *big.Int) string {
	b := v.FillBytes(make([]byte, 16))
	return hex.EncodeToString(b)
}

// logstore finds a configured logstore.
func (s *Server) logstore(project, name string) (*logstore, *APIError) {
	p := s.projects[project]
	if p == nil {
		return nil, &APIError{Status: http.StatusNotFound, Code: "ProjectNotExist",
			Message: fmt.Sprintf("The Project does not exist : %s", project)}
	}
	ls := p.logstores[name]
	if ls == nil {
		return nil, &APIError{Status: http.StatusNotFound, Code: "LogStoreNotExist",
			Message: fmt.Sprintf("logstore %s does not exist", name)}
	}
	return ls, nil
}

// Shards returns a logstore's shards, sorted by id, as ListShards does.
// The error, if any, is an *APIError.
func (s *Server) Shards(project, logstore string) ([]ShardInfo, error) {
	ls, aerr := s.logstore(project, logstore)
	if aerr != nil {
		return nil, aerr
	}
	return ls.list(), nil
}

// SplitShard splits a readwrite shard at splitKey (32 hex digits; empty
// means the middle of its range): the shard turns readonly and two new
// readwrite shards take over its range. Writes in flight keep landing in
// the right place, because routing only ever considers readwrite shards.
// It returns the parent and its two children. The error, if any, is an
// *APIError.
func (s *Server) SplitShard(project, logstore string, shardID int, splitKey string) ([]ShardInfo, error) {
	ls, aerr := s.logstore(project, logstore)
	if aerr != nil {
		return nil, aerr
	}
	out, aerr := ls.split(shardID, splitKey, time.Now())
	if aerr != nil {
		return nil, aerr
	}
	return out, nil
}

// MergeShards merges a readwrite shard with the readwrite shard that
// follows it in key order: both turn readonly and one new readwrite shard
// covers both ranges. It returns the two parents and the child. The error,
// if any, is an *APIError.
func (s *Server) MergeShards(project, logstore string, shardID int) ([]ShardInfo, error) {
	ls, aerr := s.logstore(project, logstore)
	if aerr != nil {
		return nil, aerr
	}
	out, aerr := ls.merge(shardID, time.Now())
	if aerr != nil {
		return nil, aerr
	}
	return out, nil
}

// SetQuota changes the per-shard write quota of a logstore (zero fields
// turn limits off). The error, if any, is an *APIError.
func (s *Server) SetQuota(project, logstore string, q Quota) error {
	ls, aerr := s.logstore(project, logstore)
	if aerr != nil {
		return aerr
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.quota = q
	for _, sh := range ls.shards {
		sh.bytes, sh.requests = tokenBucket{}, tokenBucket{}
	}
	return nil
}

// serveSplitMerge serves the SDK's SplitShard (?action=split&key=) and
// MergeShards (?action=merge).
func (s *Server) serveSplitMerge(w http.ResponseWriter, r *http.Request, ls *logstore, rt route) {
	id, err := strconv.Atoi(rt.shard)
	if err != nil {
		s.writeError(w, badRequest("ParameterInvalid", fmt.Sprintf("shard id %q is not a number", rt.shard)))
		return
	}
	var out []ShardInfo
	var aerr *APIError
	if rt.op == OpSplitShard {
		if r.URL.Query().Get("shardCount") != "" {
			s.writeError(w, badRequest("ParameterInvalid", "slsfake splits into two shards only; pass key instead of shardCount"))
			return
		}
		out, aerr = ls.split(id, r.URL.Query().Get("key"), time.Now())
	} else {
		out, aerr = ls.merge(id, time.Now())
	}
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	s.writeJSON(w, out)
}
