// Package wal is slsrelay's disk buffer: an append-only store of the
// producer batches the engine has validated, kept until the shardwriter has
// delivered them to SLS. The batches are frames in data files of its own
// (datafile.go); badger indexes them and holds the small tables.
//
// Data is organised in streams (one per project/logstore/partition, named by
// a StreamKey), each a sequence of entries with Kafka-style offsets. Appends
// from all connections are merged into group commits: one write and one
// fdatasync per group (see Options.Sync). Each stream has one
// Reader that reads from its committed position and persists it with Commit;
// fully consumed data files are deleted and index segments dropped so the
// disk empties as delivery catches up. Entries that cannot be delivered
// can be moved to a dead-letter table and replayed or dropped later.
//
// Credential secrets are stored once per distinct credential, encrypted with
// AES-256-GCM; the WAL never writes a secret in the clear.
//
// Unless a method's comment says otherwise, the methods of WAL are safe for
// concurrent use; a Reader is used by one goroutine at a time.
package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
//
// Lock order. A goroutine holding one of these locks may take only locks
// further down the list, never one above it or the same one again:
//
//  1. reclaimMu: held by Reclaim for its whole run (while it waits for the
//     committer, which never takes it) and by Close.
//  2. dbWriteMu: held exclusively by Reclaim around badger's DropPrefix,
//     shared around each write transaction's Commit (commitTxn) and by
//     the syncer around a sync that carries out the indexer's ask to sync
//     badger's files (only if free: the ask is put off during a drop).
//  3. dbMu: held shared by each read of db for the read's duration
//     (acquireDB), exclusively by Close to close db.
//  4. dataFiles.mu: held shared around a pread of a data file,
//     exclusively to add, close or take out files.
//  5. dataFile.mu: one data file's descriptor.
//  6. The leaf locks, taken after any of the above and never held while
//     taking another lock, doing disk I/O or running a callback: qmu,
//     streams.mu, stream.mu, dead.mu, disk.mu, syncer.mu, crypter.mu.
//     (disk.mu is held while logging a change of the disk's state, so
//     that the log lines come in the order of the changes.)
//
// So streams.mu and a stream's mu are never held together: code that needs
// both copies the stream list (or the stream) under streams.mu, releases
// it, then locks each stream. Callbacks (an append's done, a WatchStreams
// fn, a DeadLetters yield) run with no lock held, so they may call the WAL
// (though a done must not block: see Append).
type WAL struct {
	// Set by Open, read-only after.
	dir   string
	opts  Options
	log   *slog.Logger
	db    *badger.DB
	data  *dataFiles
	crypt *crypter

	checkpoint dataPos  // loaded at Open: frames after it are replayed
	staleRows  [][]byte // rows Open found stale, deleted by replay

	// The append queue, drained by the committer goroutine.
	//
	// qmu protects queue, and orders the closed check in enqueue before
	// Close's final drain of the queue.
	qmu     sync.Mutex
	queue   []*request
	qwake   chan struct{}
	closing chan struct{}
	closed  atomic.Bool
	done    chan struct{} // closed when the committer has exited
	bgwg    sync.WaitGroup

	streams streamSet // its own mu

	knownCreds  map[string]bool // credential rows written; committer (and Open) only
	credSecrets sync.Map        // credential row key → decrypted secret (reader side)

	dead deadLetterState // its own mu

	// reclaimMu serialises Reclaim calls, and makes Close wait for one in
	// progress. It protects retryDrops.
	reclaimMu  sync.Mutex
	retryDrops []dropTarget // segments whose DropPrefix failed

	// dbWriteMu keeps the WAL's badger writes out of a DropPrefix, which
	// refuses them (ErrBlockedWrites) while it runs: held shared around
	// every write transaction's Commit (commitTxn), exclusively by Reclaim
	// around DropPrefix. The syncer tries it before an optional sync of
	// badger's files, which would wait for the drop. It protects no field.
	dbWriteMu sync.RWMutex

	// dbMu protects dbClosed and keeps db open: held shared by every read
	// of db (acquireDB/releaseDB), exclusively by Close. The committer,
	// the syncer and the indexer use db without it (Close closes db after
	// they exit), and so does Reclaim (under reclaimMu, which Close takes
	// first).
	dbMu     sync.RWMutex
	dbClosed bool

	disk        diskState      // its own mu
	committerSt committerState // committer goroutine only
	syncer      syncerState    // its own mu

	groups       atomic.Int64
	syncs        atomic.Int64
	writeNanos   atomic.Int64 // time in txn.Commit, for benchmarks
	syncNanos    atomic.Int64 // time in db.Sync
	lastReclaim  atomic.Int64
	reclaimStats atomic.Pointer[ReclaimResult]
	faults       atomic.Pointer[faultHooks] // tests only
	stopped      atomic.Pointer[error]      // set by stopAppends
	syncFailing  atomic.Bool                // the last sync of data failed
}

// deadLetterState counts the dead-letter table.
type deadLetterState struct {
	// mu protects nextID, count and busy.
	mu     sync.Mutex
	nextID uint64          // the highest id given so far
	count  int             // rows in the table
	busy   map[uint64]bool // ids in Replay or Drop
}

// stopAppends makes every later append fail with err, until a restart.
// Safe for concurrent use; the first reason stays.
func (w *WAL) stopAppends(err error) {
	if w.stopped.CompareAndSwap(nil, &err) {
		w.disk.mu.Lock()
		w.disk.stopped = true
		w.disk.mu.Unlock()
		w.log.Error("wal: appends stopped until restart", "dir", w.dir, "err", err)
	}
}

// faultHooks make the data files' syncs or the index writes fail, for the
// tests of what the WAL does then. A nil hook (and a nil *faultHooks, as
// outside tests) injects nothing.
type faultHooks struct {
	fdatasync func(path string) error
	dbSync    func() error
	index     func() error
	// reclaimStep runs at each step of Reclaim's removal (reclaimSteps):
	// stepPlanned where it starts removing what the committer planned.
	reclaimStep func(step string)

	// The power-loss test's observers (powerloss_kit_test.go): they inject
	// nothing, they report what a sync made durable. dataSynced runs after
	// a successful fdatasync of a data file with the size the file had
	// before it (every byte below is on disk); dataFileDurable after the
	// directory fsync that makes a new data file's name durable;
	// badgerFileSynced after the syncer fdatasynced one of badger's logs
	// (name in the WAL directory); badgerDirSynced after it fsynced the
	// WAL directory, with the names listed before that fsync.
	dataSynced       func(path string, size int64)
	dataFileDurable  func(path string)
	badgerFileSynced func(name string)
	badgerDirSynced  func(names []string)
}

// valueThreshold: values from this size on go to badger's value log. Index
// rows, stream metadata and positions are smaller and stay in the LSM,
// where rewriting them each group is cheap; only dead letters (which carry
// their batch) go to the value log.
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
	if err := mkdirDurable(dir); err != nil {
		return nil, err
	}
	if err := checkFiles(dir); err != nil {
		return nil, err
	}
	if err := removeEmptyBadgerLogs(dir, opts.Logger); err != nil {
		return nil, err
	}
	crypt, err := newCrypter(opts.EncryptionKey)
	if err != nil {
		return nil, err
	}
	data, err := openDataFiles(dir)
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
		dir:     dir,
		opts:    opts,
		log:     opts.Logger,
		db:      db,
		data:    data,
		crypt:   crypt,
		qwake:   make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		streams: streamSet{
			byKey: make(map[StreamKey]*stream),
			byID:  make(map[uint32]*stream),
			wake:  make(chan struct{}),
		},
		knownCreds: make(map[string]bool),
	}
	if err := w.load(); err != nil {
		db.Close()
		return nil, err
	}
	if err := w.replay(); err != nil {
		db.Close()
		data.close()
		return nil, err
	}
	w.settleStreams()
	w.disk.init(w)
	w.startSyncer()
	go w.commitLoop()
	// A crash between a value-log GC and its deletes again
	// (collectValueLogs) left dropped dead letters only shadowed by a
	// delete a compaction may drop: delete them again before that.
	if err := w.deleteDeadAgain(w.shadowedDeadLetters()); err != nil {
		w.log.Warn("wal: cannot delete dropped dead letters again; the next value-log GC does", "dir", dir, "err", err)
	}
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
	if ents, err := os.ReadDir(filepath.Join(dir, dataDirName)); err == nil {
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), dataFileExt) && fi.Size() > 0 {
				hasData = true
			}
		}
	}
	if hasData && !hasManifest {
		return fmt.Errorf("data files but no MANIFEST (badger would start an empty index): %w", ErrCorrupt)
	}
	return nil
}

// removeEmptyBadgerLogs deletes 0-byte memtable and value logs (*.mem,
// *.vlog) from badger's directory. badger (v4.9.6) creates such a log
// file and then sizes it; a process killed in between leaves an empty
// file, and Open fails on it with "Create a new file": logFile.open
// (memtable.go) answers z.NewFile for a file it had to start, which
// openMemTables and valueLog.open take for an error. An empty file holds
// no entry — badger writes its header first — so nothing is lost. Seen by
// TestCrash, which kills the WAL while Reclaim's DropPrefix starts a new
// memtable.
func removeEmptyBadgerLogs(dir string, log *slog.Logger) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot list %q: %w", dir, err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".mem") && !strings.HasSuffix(e.Name(), ".vlog") {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() != 0 || !fi.Mode().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("cannot remove the empty badger log %q: %w", path, err)
		}
		if log != nil {
			log.Warn("wal: removed an empty badger log file left by a crash", "path", path)
		}
	}
	return nil
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
	// The committer has exited: no stream is added any more. Streams are
	// locked after mu is released (lock order, see WAL).
	w.streams.mu.Lock()
	list := w.streams.list
	close(w.streams.wake)
	w.streams.mu.Unlock()
	for _, st := range list {
		st.mu.Lock()
		close(st.wake)
		st.wake = make(chan struct{})
		st.mu.Unlock()
	}
	w.reclaimMu.Lock() // wait for a Reclaim called by a user
	defer w.reclaimMu.Unlock()
	w.dbMu.Lock() // wait for reads in progress
	defer w.dbMu.Unlock()
	w.dbClosed = true
	w.data.close()
	if err := w.db.Close(); err != nil {
		return fmt.Errorf("cannot close WAL at %q: %w", w.dir, err)
	}
	return nil
}

// Dir returns the directory the WAL was opened in.
func (w *WAL) Dir() string { return w.dir }

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
