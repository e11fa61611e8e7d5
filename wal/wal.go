// Package wal is slsrelay's disk buffer: an append-only store, on badger, of
// the producer batches the engine has validated, kept until the shardwriter
// has delivered them to SLS.
//
// Data is organised in streams (one per project/logstore/partition, named by
// a StreamKey), each a sequence of entries with Kafka-style offsets. Appends
// from all connections are merged into group commits: one badger
// transaction and one fsync per group (see Options.Sync). Each stream has one
// Reader that reads from its committed position and persists it with Commit;
// fully consumed segments are dropped and the value log garbage-collected so
// the disk empties as delivery catches up. Entries that cannot be delivered
// can be moved to a dead-letter table and replayed or dropped later.
//
// Credential secrets are stored once per distinct credential, encrypted with
// AES-256-GCM; the WAL never writes a secret in the clear.
//
// Unless a method's comment says otherwise, the methods of WAL are safe for
// concurrent use; a Reader is used by one goroutine at a time.
package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

var (
	// ErrFull is returned when an append would take the WAL over
	// Options.MaxDiskBytes or the file system under MinFreeDiskBytes.
	ErrFull = errors.New("wal: disk buffer full")
	// ErrClosed is returned by calls on a closed WAL or Reader.
	ErrClosed = errors.New("wal: closed")
	// ErrCorrupt marks stored data that failed a check.
	ErrCorrupt = errors.New("wal: corrupt data")
	// ErrInvalidEntry is returned for an entry the WAL cannot store (no
	// records, nil).
	ErrInvalidEntry = errors.New("wal: invalid entry")
	// ErrReaderOpen is returned by WAL.Reader when the stream already has
	// an open reader.
	ErrReaderOpen = errors.New("wal: stream already has an open reader")
	// ErrNotFound is returned for an unknown stream or dead letter.
	ErrNotFound = errors.New("wal: not found")
)

// WAL is an open disk buffer. Create it with Open, release it with Close.
type WAL struct {
	dir   string
	opts  Options
	log   *slog.Logger
	db    *badger.DB
	crypt *crypter

	// The append queue, drained by the committer goroutine.
	qmu     sync.Mutex
	queue   []*request
	qwake   chan struct{}
	closing chan struct{}
	closed  atomic.Bool
	done    chan struct{} // closed when the committer has exited
	bgwg    sync.WaitGroup

	// Streams. byKey/byID/list change only in the committer, under mu.
	mu           sync.RWMutex
	byKey        map[StreamKey]*stream
	byID         map[uint32]*stream
	list         []*stream
	streamsWake  chan struct{} // closed and replaced when a stream appears
	nextSID      uint32        // committer only
	knownCreds   map[string]bool
	credSecrets  sync.Map // credential row key → decrypted secret (reader side)
	deadMu       sync.Mutex
	nextDeadID   uint64
	deadCount    int
	deadBusy     map[uint64]bool // ids in Replay or Drop
	reclaimMu    sync.Mutex
	dbMu         sync.RWMutex // held shared by reads of db; Close takes it to close db
	dbClosed     bool
	groups       atomic.Int64
	syncs        atomic.Int64
	writeNanos   atomic.Int64 // time in txn.Commit, for benchmarks
	syncNanos    atomic.Int64 // time in db.Sync
	disk         diskState
	committerSt  committerState
	syncer       syncerState
	lastReclaim  atomic.Int64
	reclaimStats atomic.Pointer[ReclaimResult]
}

// stream is the in-memory state of one stream.
type stream struct {
	id  uint32
	key StreamKey

	meta streamMeta // as last written; committer only

	mu        sync.Mutex
	readable  position // entries below readable.Offset are written and synced
	committed position // the reader's persisted position
	segs      []segInfo
	wake      chan struct{} // closed and replaced when readable advances
	reader    *Reader
}

type segInfo struct {
	seg   uint64
	first int64
}

// valueThreshold: values from this size on go to the value log. Entries
// (batches) are larger; stream metadata and positions are smaller and stay
// in the LSM, where rewriting them each group is cheap.
const valueThreshold = 256

// Open opens or creates the WAL in dir. It reads only per-stream metadata,
// never the entries, so it takes the same time whatever the backlog.
func Open(dir string, opts Options) (*WAL, error) {
	w, err := open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open WAL at %q: %w", dir, err)
	}
	return w, nil
}

func open(dir string, opts Options) (*WAL, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkFiles(dir); err != nil {
		return nil, err
	}
	crypt, err := newCrypter(opts.EncryptionKey)
	if err != nil {
		return nil, err
	}
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{opts.Logger}).
		// Entries go to the value log; the LSM holds keys and small metadata.
		WithValueThreshold(valueThreshold).
		// One explicit db.Sync per group commit instead of one per txn.
		WithSyncWrites(false).
		// A single committer assigns offsets: nothing to detect.
		WithDetectConflicts(false).
		WithNumVersionsToKeep(1).
		WithValueLogFileSize(opts.ValueLogFileSize).
		WithMemTableSize(opts.MemTableSize).
		WithNumMemtables(2).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(opts.BlockCacheSize).
		WithIndexCacheSize(4 << 20).
		WithBaseTableSize(4 << 20).
		WithNumCompactors(2).
		WithCompactL0OnClose(false).
		WithMetricsEnabled(false)
	db, err := badger.Open(bo)
	if err != nil {
		return nil, err
	}
	w := &WAL{
		dir:         dir,
		opts:        opts,
		log:         opts.Logger,
		db:          db,
		crypt:       crypt,
		qwake:       make(chan struct{}, 1),
		closing:     make(chan struct{}),
		done:        make(chan struct{}),
		byKey:       make(map[StreamKey]*stream),
		byID:        make(map[uint32]*stream),
		streamsWake: make(chan struct{}),
		knownCreds:  make(map[string]bool),
	}
	if err := w.load(); err != nil {
		db.Close()
		return nil, err
	}
	w.disk.init(w)
	w.startSyncer()
	go w.commitLoop()
	if opts.ReclaimInterval > 0 {
		w.bgwg.Add(1)
		go w.reclaimLoop()
	}
	return w, nil
}

// checkFiles refuses a directory holding badger data but no MANIFEST: badger
// would start a new manifest and delete every table it does not list,
// silently losing all stream metadata.
func checkFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	hasData, hasManifest := false, false
	for _, e := range ents {
		switch {
		case e.Name() == "MANIFEST":
			hasManifest = true
		case strings.HasSuffix(e.Name(), ".sst"), strings.HasSuffix(e.Name(), ".vlog"):
			hasData = true
		}
	}
	if hasData && !hasManifest {
		return fmt.Errorf("data files but no MANIFEST (badger would delete the tables): %w", ErrCorrupt)
	}
	return nil
}

// load reads the per-stream keys, the credential row names and the
// dead-letter ids: all small tables.
func (w *WAL) load() error {
	return w.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(versionKey)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			if !isEmpty(txn) {
				return fmt.Errorf("no format marker in a non-empty database: %w", ErrCorrupt)
			}
			// New WAL: the marker is written with the first group; a
			// crash before that leaves an empty, valid database.
			w.committerSt.needVersion = true
		case err != nil:
			return err
		default:
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if string(v) != formatVersion {
				return fmt.Errorf("format %q, want %q", v, formatVersion)
			}
		}
		if err := w.loadStreams(txn); err != nil {
			return err
		}
		return w.loadSmallTables(txn)
	})
}

func isEmpty(txn *badger.Txn) bool {
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = false
	it := txn.NewIterator(opt)
	defer it.Close()
	it.Rewind()
	return !it.Valid()
}

// scanPrefix calls fn for each key (copied) and value under prefix.
func scanPrefix(txn *badger.Txn, prefix []byte, values bool, fn func(k, v []byte) error) error {
	opt := badger.DefaultIteratorOptions
	opt.Prefix = prefix
	opt.PrefetchValues = false
	it := txn.NewIterator(opt)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var v []byte
		if values {
			var err error
			if v, err = it.Item().ValueCopy(nil); err != nil {
				return err
			}
		}
		if err := fn(it.Item().KeyCopy(nil), v); err != nil {
			return err
		}
	}
	return nil
}

func (w *WAL) loadStreams(txn *badger.Txn) error {
	err := scanPrefix(txn, []byte{tagStream}, true, func(k, v []byte) error {
		if len(k) != 5 {
			return fmt.Errorf("stream key %x: %w", k, ErrCorrupt)
		}
		sk, _, err := decodeStreamKey(v)
		if err != nil {
			return fmt.Errorf("stream %x: %w", k, ErrCorrupt)
		}
		st := &stream{id: sidOf(k), key: sk, wake: make(chan struct{})}
		w.byKey[sk] = st
		w.byID[st.id] = st
		w.list = append(w.list, st)
		w.nextSID = max(w.nextSID, st.id)
		return nil
	})
	if err != nil {
		return err
	}
	for _, t := range []byte{tagMeta, tagPosition, tagSegment} {
		err := scanPrefix(txn, []byte{t}, true, func(k, v []byte) error {
			if len(k) < 5 {
				return fmt.Errorf("key %x: %w", k, ErrCorrupt)
			}
			st := w.byID[sidOf(k)]
			if st == nil {
				return nil // left over from a stream whose registry row is gone
			}
			switch t {
			case tagMeta:
				m, err := decodeMeta(v)
				if err != nil {
					return fmt.Errorf("stream %v: %w", st.key, err)
				}
				st.meta = m
			case tagPosition:
				p, err := decodePosition(v)
				if err != nil {
					return fmt.Errorf("stream %v: %w", st.key, err)
				}
				st.committed = p
			case tagSegment:
				if len(k) != 13 || len(v) != 8 {
					return fmt.Errorf("segment key %x: %w", k, ErrCorrupt)
				}
				st.segs = append(st.segs, segInfo{seg: beUint64(k[5:]), first: int64(beUint64(v))})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, st := range w.list {
		if err := w.checkTail(txn, st); err != nil {
			return err
		}
		// A segment dropped by reclaim whose roll was not persisted.
		if st.meta.HasSeg && !slices.ContainsFunc(st.segs, func(s segInfo) bool { return s.seg == st.meta.Seg }) {
			st.meta.HasSeg = false
			st.meta.Seg++
		}
		st.readable = position{Offset: st.meta.Next, CumBytes: st.meta.CumBytes, CumEntries: st.meta.CumEntries}
		if st.committed.Offset > st.readable.Offset {
			// Cannot happen when positions are only committed for synced
			// data; clamp rather than skip entries written after restart.
			w.log.Warn("wal: committed position beyond the stream end; clamping",
				"stream", st.key, "committed", st.committed.Offset, "next", st.readable.Offset)
			st.committed = st.readable
		}
	}
	return nil
}

// checkTail seeks to the last entry of the stream and makes sure the stored
// next offset is past it. The metadata is written in the same transaction as
// the entries, so this only guards against a lost metadata row; it costs one
// seek per stream.
func (w *WAL) checkTail(txn *badger.Txn, st *stream) error {
	opt := badger.DefaultIteratorOptions
	opt.Reverse = true
	opt.PrefetchValues = false
	prefix := sidKey(tagEntry, st.id)
	opt.Prefix = prefix
	it := txn.NewIterator(opt)
	defer it.Close()
	it.Seek(append(slices.Clone(prefix), 0xff))
	if !it.ValidForPrefix(prefix) {
		return nil
	}
	_, seg, off, ok := parseEntryKey(it.Item().Key())
	if !ok || off < st.meta.Next {
		return nil
	}
	end := off + 1
	if v, err := it.Item().ValueCopy(nil); err == nil {
		if se, err := decodeEntry(v); err == nil && se.Entry.Records > 0 {
			end = off + int64(se.Entry.Records)
		}
	}
	w.log.Warn("wal: stream metadata behind its last entry; advancing", "stream", st.key, "next", st.meta.Next, "last", off)
	st.meta.Next = end
	st.meta.Seg, st.meta.HasSeg = seg, true
	return nil
}

func (w *WAL) loadSmallTables(txn *badger.Txn) error {
	err := scanPrefix(txn, []byte{tagCred}, false, func(k, _ []byte) error {
		w.knownCreds[string(k)] = true
		return nil
	})
	if err != nil {
		return err
	}
	return scanPrefix(txn, []byte{tagDead}, false, func(k, _ []byte) error {
		if len(k) == 9 {
			w.deadCount++
			w.nextDeadID = max(w.nextDeadID, beUint64(k[1:]))
		}
		return nil
	})
}

func sidOf(k []byte) uint32 {
	return uint32(k[1])<<24 | uint32(k[2])<<16 | uint32(k[3])<<8 | uint32(k[4])
}

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// Close finishes the appends already queued (their done callbacks run),
// stops background work, wakes blocked readers with ErrClosed and closes
// the database. Appends after Close fail with ErrClosed. Safe to call
// concurrently and more than once; only the first call does the work.
func (w *WAL) Close() error {
	if !w.closed.CompareAndSwap(false, true) {
		<-w.done
		return nil
	}
	close(w.closing)
	<-w.done
	w.bgwg.Wait()
	w.mu.RLock()
	for _, st := range w.list {
		st.mu.Lock()
		close(st.wake)
		st.wake = make(chan struct{})
		st.mu.Unlock()
	}
	close(w.streamsWake)
	w.mu.RUnlock()
	w.reclaimMu.Lock() // wait for a Reclaim called by a user
	defer w.reclaimMu.Unlock()
	w.dbMu.Lock() // wait for reads in progress
	defer w.dbMu.Unlock()
	w.dbClosed = true
	if err := w.db.Close(); err != nil {
		return fmt.Errorf("cannot close WAL at %q: %w", w.dir, err)
	}
	return nil
}

// Dir returns the directory the WAL was opened in.
func (w *WAL) Dir() string { return w.dir }

// Streams returns every stream, in the order they were created.
func (w *WAL) Streams() []StreamKey {
	w.mu.RLock()
	defer w.mu.RUnlock()
	keys := make([]StreamKey, len(w.list))
	for i, st := range w.list {
		keys[i] = st.key
	}
	return keys
}

// WatchStreams calls fn (from a goroutine of its own, one call at a time)
// for every stream: first those that exist, then each new one as its first
// entry is written. It returns when ctx is done or the WAL is closed.
// Typical use: `go w.WatchStreams(ctx, startWriter)`.
func (w *WAL) WatchStreams(ctx context.Context, fn func(StreamKey)) {
	seen := 0
	for {
		w.mu.RLock()
		list := w.list[seen:]
		wake := w.streamsWake
		w.mu.RUnlock()
		for _, st := range list {
			fn(st.key)
		}
		seen += len(list)
		if w.closed.Load() {
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}

// acquireDB keeps the database open for a read; false once closed.
func (w *WAL) acquireDB() bool {
	w.dbMu.RLock()
	if w.dbClosed {
		w.dbMu.RUnlock()
		return false
	}
	return true
}

func (w *WAL) releaseDB() { w.dbMu.RUnlock() }

func (w *WAL) lookup(k StreamKey) *stream {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.byKey[k]
}

// badgerLogger routes badger's log lines to slog; its info lines are
// demoted to debug because badger is chatty.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Debugf(string, ...any) {}

// dirSize is the space the files of dir take (allocated blocks: badger's
// files are sparse until written).
func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // deleted by GC while walking
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		total += allocated(fi)
		return nil
	})
	return total, err
}
