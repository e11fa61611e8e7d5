package engine

import (
	"bytes"
	"sync"

	"github.com/slsrelay/slsrelay/wal"
)

// MemoryAppender keeps appended entries in memory: the appender of tests
// and of an ack-path-only bench target. It assigns offsets like the WAL and
// completes appends at once. Safe for concurrent use.
type MemoryAppender struct {
	mu      sync.Mutex
	streams map[wal.StreamKey][]wal.Entry
	next    map[wal.StreamKey]int64
	fail    error
	// Discard, if set, keeps offsets but not the entries (for benchmarks).
	Discard bool
}

// Append implements Appender.
func (m *MemoryAppender) Append(k wal.StreamKey, e *wal.Entry, _ bool, done func(int64, error)) {
	m.mu.Lock()
	if m.fail != nil {
		err := m.fail
		m.mu.Unlock()
		done(-1, err)
		return
	}
	if m.streams == nil {
		m.streams, m.next = map[wal.StreamKey][]wal.Entry{}, map[wal.StreamKey]int64{}
	}
	base := m.next[k]
	m.next[k] = base + int64(e.Records)
	if !m.Discard {
		c := *e
		c.BaseOffset = base
		c.Data = bytes.Clone(e.Data) // e.Data is the engine's again after done
		m.streams[k] = append(m.streams[k], c)
	}
	m.mu.Unlock()
	done(base, nil)
}

// Entries returns a copy of what stream k holds.
func (m *MemoryAppender) Entries(k wal.StreamKey) []wal.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]wal.Entry(nil), m.streams[k]...)
}

// Streams returns every stream that received an entry.
func (m *MemoryAppender) Streams() []wal.StreamKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]wal.StreamKey, 0, len(m.streams))
	for k := range m.streams {
		keys = append(keys, k)
	}
	return keys
}

// SetFail makes every later append fail with err (nil: succeed again), to
// test storage errors.
func (m *MemoryAppender) SetFail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}
