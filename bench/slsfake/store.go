package slsfake

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// StoredLog is one log as the stand-in stored it, with its LogGroup's
// attributes.
type StoredLog struct {
	Project  string
	Logstore string
	ShardID  int
	// Cursor is the position of the log's LogGroup in its shard, as
	// GetCursor/PullLogs use it.
	Cursor string
	// Index is the log's position in its LogGroup.
	Index    int
	Received time.Time

	Topic       string
	Source      string
	MachineUUID string
	Tags        []KV

	Time      uint32
	TimeNs    uint32
	HasTimeNs bool
	Contents  []KV
}

// KV is one key/value pair of a log's contents or a LogGroup's tags, in the
// order they were sent.
type KV struct {
	Key   string
	Value string
}

// store keeps received LogGroups per shard, in arrival order, bounded in
// bytes. Its methods are safe for concurrent use.
type store struct {
	mu      sync.Mutex
	max     int64 // < 0: unbounded
	size    int64
	shards  map[shardKey]*shardLog
	arrival []*shardLog // one entry per stored group, oldest first
	head    int         // arrival[head:] are live

	droppedGroups, droppedLogs, droppedBytes int64
}

type shardKey struct {
	project, logstore string
	shard             int
}

// shardLog is one shard's LogGroups; groups[i] has sequence number
// first+i, and the sequence number is what cursors encode.
type shardLog struct {
	groups []storedGroup
	first  uint64
}

// storedGroup is one LogGroup as received (decompressed protobuf). raw is
// never modified in place: DropLogs swaps in a new slice, so readers may use
// a raw they copied out under the lock.
type storedGroup struct {
	raw      []byte
	received time.Time
	logs     int
}

func newStore(max int64) *store {
	return &store{max: max, shards: make(map[shardKey]*shardLog)}
}

func (st *store) shard(k shardKey) *shardLog {
	sl := st.shards[k]
	if sl == nil {
		sl = &shardLog{}
		st.shards[k] = sl
	}
	return sl
}

// append stores one LogGroup, dropping the oldest groups of any shard first
// if the bound would be passed.
func (st *store) append(k shardKey, g storedGroup) {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := int64(len(g.raw))
	for st.max >= 0 && st.size+n > st.max && st.head < len(st.arrival) {
		st.dropOldest()
	}
	sl := st.shard(k)
	sl.groups = append(sl.groups, g)
	st.arrival = append(st.arrival, sl)
	st.size += n
}

// dropOldest removes the oldest stored group; the caller holds st.mu. The
// group a shard's arrival entry stands for is always that shard's first, as
// both lists are in arrival order.
func (st *store) dropOldest() {
	sl := st.arrival[st.head]
	st.arrival[st.head] = nil
	st.head++
	if st.head > 1024 && st.head*2 > len(st.arrival) {
		st.arrival = slices.Clone(st.arrival[st.head:])
		st.head = 0
	}
	g := sl.groups[0]
	sl.groups[0] = storedGroup{}
	sl.groups = sl.groups[1:]
	sl.first++
	st.size -= int64(len(g.raw))
	st.droppedGroups++
	st.droppedLogs += int64(g.logs)
	st.droppedBytes += int64(len(g.raw))
}

// Cursors encode a sequence number as base64 of its decimal form, the shape
// SLS's own cursors have, so clients that log or compare them see nothing
// unusual.
func encodeCursor(seq uint64) string {
	return base64.StdEncoding.EncodeToString([]byte(strconv.FormatUint(seq, 10)))
}

func decodeCursor(c string) (uint64, error) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, fmt.Errorf("cannot decode cursor %q: %w", c, err)
	}
	seq, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot decode cursor %q: %w", c, err)
	}
	return seq, nil
}

func invalidCursor(msg string) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: "InvalidCursor", Message: msg}
}

// cursor answers GetCursor: "begin" is the oldest stored group, "end" the
// position after the newest, and a unix time the first group received at or
// after it (end if none).
func (st *store) cursor(k shardKey, from string) (string, *APIError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	sl := st.shard(k)
	end := sl.first + uint64(len(sl.groups))
	switch from {
	case "begin":
		return encodeCursor(sl.first), nil
	case "end":
		return encodeCursor(end), nil
	}
	sec, err := strconv.ParseInt(from, 10, 64)
	if err != nil || sec < 0 {
		return "", &APIError{Status: http.StatusBadRequest, Code: "ParameterInvalid",
			Message: fmt.Sprintf("from %q is not begin, end or a unix time", from)}
	}
	t := time.Unix(sec, 0)
	i, _ := slices.BinarySearchFunc(sl.groups, t, func(g storedGroup, t time.Time) int {
		return g.received.Compare(t)
	})
	return encodeCursor(sl.first + uint64(i)), nil
}

// cursorTime returns when the group at cursor was received; the end
// cursor's time is now.
func (st *store) cursorTime(k shardKey, cursor string) (time.Time, *APIError) {
	seq, err := decodeCursor(cursor)
	if err != nil {
		return time.Time{}, invalidCursor(err.Error())
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	sl := st.shard(k)
	switch end := sl.first + uint64(len(sl.groups)); {
	case seq < sl.first || seq > end:
		return time.Time{}, invalidCursor(fmt.Sprintf("cursor %s is out of range", cursor))
	case seq == end:
		return time.Now(), nil
	}
	return sl.groups[seq-sl.first].received, nil
}

// read returns up to count groups from cursor (stopping before endCursor
// when given) and the next cursor. A cursor before the oldest stored group
// (its data was dropped by the memory bound) or past the end is invalid, as
// an out-of-range cursor is for SLS; skipping ahead silently would hide the
// drop from a reader that checks for loss.
func (st *store) read(k shardKey, cursor, endCursor string, count int) ([][]byte, string, *APIError) {
	from, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", invalidCursor(err.Error())
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	sl := st.shard(k)
	end := sl.first + uint64(len(sl.groups))
	if endCursor != "" {
		e, err := decodeCursor(endCursor)
		if err != nil {
			return nil, "", invalidCursor(err.Error())
		}
		end = min(end, e)
	}
	if from < sl.first {
		return nil, "", invalidCursor(fmt.Sprintf("cursor %s is older than the oldest stored data (dropped)", cursor))
	}
	if from > sl.first+uint64(len(sl.groups)) {
		return nil, "", invalidCursor(fmt.Sprintf("cursor %s is past the end of shard %d", cursor, k.shard))
	}
	var out [][]byte
	seq := from
	for ; seq < end && len(out) < count; seq++ {
		out = append(out, sl.groups[seq-sl.first].raw)
	}
	return out, encodeCursor(seq), nil
}

// snapshot copies out the groups of one logstore, shard by shard in id
// order, for decoding outside the lock.
type groupRef struct {
	shard    int
	seq      uint64
	received time.Time
	raw      []byte
}

func (st *store) snapshot(project, logstore string) []groupRef {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []groupRef
	for k, sl := range st.shards {
		if k.project != project || k.logstore != logstore {
			continue
		}
		for i, g := range sl.groups {
			out = append(out, groupRef{shard: k.shard, seq: sl.first + uint64(i), received: g.received, raw: g.raw})
		}
	}
	slices.SortFunc(out, func(a, b groupRef) int {
		if a.shard != b.shard {
			return a.shard - b.shard
		}
		return int(a.seq - b.seq)
	})
	return out
}

func (st *store) count(project, logstore string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for k, sl := range st.shards {
		if k.project == project && k.logstore == logstore {
			for _, g := range sl.groups {
				n += g.logs
			}
		}
	}
	return n
}

// decodeGroup expands one stored LogGroup into StoredLogs.
func decodeGroup(project, logstore string, ref groupRef) ([]StoredLog, *sls.LogGroup, error) {
	var lg sls.LogGroup
	if err := lg.Unmarshal(ref.raw); err != nil {
		return nil, nil, fmt.Errorf("cannot decode stored LogGroup: %w", err)
	}
	var tags []KV
	for _, t := range lg.LogTags {
		tags = append(tags, KV{Key: t.GetKey(), Value: t.GetValue()})
	}
	out := make([]StoredLog, 0, len(lg.Logs))
	for i, l := range lg.Logs {
		sl := StoredLog{
			Project: project, Logstore: logstore, ShardID: ref.shard,
			Cursor: encodeCursor(ref.seq), Index: i, Received: ref.received,
			Topic: lg.GetTopic(), Source: lg.GetSource(), MachineUUID: lg.GetMachineUUID(), Tags: tags,
			Time: l.GetTime(), TimeNs: l.GetTimeNs(), HasTimeNs: l.TimeNs != nil,
		}
		for _, c := range l.Contents {
			sl.Contents = append(sl.Contents, KV{Key: c.GetKey(), Value: c.GetValue()})
		}
		out = append(out, sl)
	}
	return out, &lg, nil
}

// Logs returns every stored log of a logstore, shard by shard (in shard id
// order) and in arrival order within a shard. It decodes on each call, so
// tests should call it once they are done writing.
func (s *Server) Logs(project, logstore string) []StoredLog {
	var out []StoredLog
	for _, ref := range s.store.snapshot(project, logstore) {
		logs, _, err := decodeGroup(project, logstore, ref)
		if err != nil {
			// Stored bodies were validated on the way in; a failure here is a
			// bug in the stand-in, not in the client.
			panic(err)
		}
		out = append(out, logs...)
	}
	return out
}

// LogCount returns the number of stored logs of a logstore without decoding
// them (cheap enough to poll).
func (s *Server) LogCount(project, logstore string) int {
	return s.store.count(project, logstore)
}

// DropLogs deletes the stored logs of a logstore for which match returns
// true and returns how many it deleted. match runs under the store's lock:
// it must not call the Server. It exists so a loss check can be
// shown to notice a missing record. A LogGroup left without logs stays (with
// its topic and tags), so cursors keep their meaning.
func (s *Server) DropLogs(project, logstore string, match func(StoredLog) bool) int {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	dropped := 0
	for k, sl := range st.shards {
		if k.project != project || k.logstore != logstore {
			continue
		}
		for i := range sl.groups {
			g := &sl.groups[i]
			ref := groupRef{shard: k.shard, seq: sl.first + uint64(i), received: g.received, raw: g.raw}
			logs, lg, err := decodeGroup(project, logstore, ref)
			if err != nil {
				panic(err)
			}
			kept := lg.Logs[:0]
			for j, l := range logs {
				if match(l) {
					dropped++
					continue
				}
				kept = append(kept, lg.Logs[j])
			}
			if len(kept) == len(logs) {
				continue
			}
			lg.Logs = kept
			raw, err := lg.Marshal()
			if err != nil {
				panic(fmt.Errorf("cannot re-encode a LogGroup: %w", err))
			}
			st.size += int64(len(raw) - len(g.raw))
			g.raw, g.logs = raw, len(kept)
		}
	}
	return dropped
}
