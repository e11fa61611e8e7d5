package wal

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The syncer fdatasyncs on its own goroutine so that the committer can
// write the next group while the previous one is being synced: the disk is
// busy with one sync after the other and each covers whatever was written
// while the previous one ran. It answers the appends that waited for the
// sync; the indexer goroutine then writes the index rows of the synced
// frames (and the lazy reader positions, positions.go) while the syncer
// runs the next sync. Readers are shown entries only once synced and
// indexed, so a committed position never points past what survives a
// crash.

// syncerState is what the committer hands to the syncer.
//
// mu protects acks, ib, files, needDB, dbAsked, seq, dirty and barriers:
// the committer (and the indexer, dbAsked) adds to them, the syncer takes
// them; and indexJobs and indexClosed: the syncer adds to them, the
// indexer takes them. retry is the indexer's own; the channels are set
// once by startSyncer.
type syncerState struct {
	mu       sync.Mutex
	acks     []ack              // written, waiting for a sync
	ib       *indexBatch        // index rows of frames written since the last sync
	files    map[*dataFile]bool // data files written since the last sync
	needDB   bool               // badger rows that must be synced (positions, streams, ...)
	dbAsked  bool               // the indexer asks for badger's files to be synced; nothing waits for it
	seq      int64              // the lowest diskSeq at the writes since the last sync
	dirty    bool               // something written since the last sync
	barriers []chan error       // answered after the next sync and index write
	retry    *indexBatch        // synced, index write failed (indexer only)
	// indexJobs: syncer → indexer, unbounded: a bounded queue made the
	// syncer, and so every acknowledgement, wait for an indexer held up
	// by a DropPrefix (dbWriteMu) once the queue was full — a few ms of
	// syncs into a drop of 30–110 ms.
	indexJobs   []indexJob
	indexClosed bool          // the syncer has handed over its last job
	indexWake   chan struct{} // a job was added, or indexClosed set
	indexDone   chan struct{}
	wake        chan struct{}
	closing     chan struct{}
	done        chan struct{}
}

// indexRetryEvery is how soon a failed index write is tried again.
const indexRetryEvery = time.Second

func (w *WAL) startSyncer() {
	s := &w.syncer
	s.ib = newIndexBatch()
	s.files = make(map[*dataFile]bool)
	s.wake = make(chan struct{}, 1)
	s.closing = make(chan struct{})
	s.done = make(chan struct{})
	s.indexWake = make(chan struct{}, 1)
	s.indexDone = make(chan struct{})
	go w.syncLoop()
	go w.indexLoop()
}

// indexJob is what one sync made durable: its index rows (and lazy reader
// positions), and barriers, told syncErr or the index write's error. The
// appends waiting for the sync were answered by the syncer already; only
// replayed dead letters (ib.late) are answered once indexed.
type indexJob struct {
	ib       *indexBatch
	barriers []chan error
	syncErr  error
}

// errIndexPending answers a barrier while synced frames wait for a retry of
// their index write: reclaim must not trust the data files' ends yet.
var errIndexPending = errors.New("wal: index write failed; retrying")

// indexLoop writes the index rows of synced frames, one transaction for
// whatever syncs finished meanwhile, while the syncer runs the next sync.
func (w *WAL) indexLoop() {
	s := &w.syncer
	defer close(s.indexDone)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	var unsynced int64 // frame bytes indexed since the index was last asked to sync
	lastAsk := time.Now()
	for {
		select {
		case <-s.indexWake:
		case <-retry.C:
		}
		s.mu.Lock()
		jobs, closed := s.indexJobs, s.indexClosed
		s.indexJobs = nil
		s.mu.Unlock()
		if closed && len(jobs) == 0 {
			return
		}
		pending := s.retry
		if pending == nil {
			pending = newIndexBatch()
		}
		var acks []ack
		for _, j := range jobs {
			pending.merge(j.ib)
		}
		if !pending.empty() {
			err := w.writeIndex(pending)
			w.indexState(err)
			if err != nil {
				// The frames are durable: acknowledged, and shown to
				// readers once a retry indexes them.
				s.retry = pending
				retry.Reset(indexRetryEvery)
			} else {
				s.retry = nil
				w.publish(pending)
				acks = append(acks, pending.late...)
				unsynced += pending.bytes
				if len(pending.posRows) > 0 {
					unsynced = max(unsynced, 1) // lazy positions: synced within indexSyncEvery too
				}
				if unsynced >= indexSyncBytes || unsynced > 0 && time.Since(lastAsk) >= indexSyncEvery {
					// badger is synced with the next data sync.
					s.mu.Lock()
					s.dbAsked = true
					s.mu.Unlock()
					unsynced, lastAsk = 0, time.Now()
				}
			}
		}
		for _, a := range acks {
			w.answer(a, nil)
		}
		var berr error
		if s.retry != nil {
			berr = errIndexPending
		}
		for _, j := range jobs {
			for _, c := range j.barriers {
				c <- cmp.Or(j.syncErr, berr)
			}
		}
		if closed {
			return // the syncer's last jobs are done
		}
	}
}

// toIndexer hands the indexer what one sync made durable; it never waits
// for the indexer. Syncer only.
func (w *WAL) toIndexer(j indexJob, last bool) {
	s := &w.syncer
	s.mu.Lock()
	if j.ib != nil {
		s.indexJobs = append(s.indexJobs, j)
	}
	s.indexClosed = s.indexClosed || last
	s.mu.Unlock()
	select {
	case s.indexWake <- struct{}{}:
	default:
	}
}

// toSyncer hands over what one step of a group wrote; seq is diskSeq from
// before its writes. Committer only.
func (w *WAL) toSyncer(acks []ack, ib *indexBatch, file *dataFile, needDB bool, seq int64) {
	if len(acks) == 0 && ib.empty() && file == nil && !needDB {
		// Nothing waits for a sync and nothing is to be indexed: no
		// empty round.
		return
	}
	s := &w.syncer
	s.mu.Lock()
	if !s.dirty || seq < s.seq {
		s.seq = seq
	}
	s.acks = append(s.acks, acks...)
	s.ib.merge(ib)
	if file != nil {
		s.files[file] = true
	}
	s.needDB = s.needDB || needDB
	s.dirty = true
	s.mu.Unlock()
	w.wakeSyncer() // under SyncInterval it arms its timer
}

func (w *WAL) wakeSyncer() {
	select {
	case w.syncer.wake <- struct{}{}:
	default:
	}
}

// syncBarrier returns once everything written so far is synced and
// indexed, or with the error that kept it from being so.
func (w *WAL) syncBarrier() error {
	c := make(chan error, 1)
	s := &w.syncer
	s.mu.Lock()
	s.barriers = append(s.barriers, c)
	s.mu.Unlock()
	w.wakeSyncer()
	return <-c
}

// syncDBNext makes the next sync include badger's files, also when
// nothing else was written. Committer only.
func (w *WAL) syncDBNext() {
	s := &w.syncer
	s.mu.Lock()
	if !s.dirty {
		s.seq = w.diskSeq()
	}
	s.needDB, s.dirty = true, true
	s.mu.Unlock()
}

func (w *WAL) syncLoop() {
	s := &w.syncer
	defer func() {
		w.toIndexer(indexJob{}, true)
		<-s.indexDone
		w.finishSyncer()
		close(s.done)
	}()
	badgerFiles := newFileSyncer(w.dir)
	badgerFiles.faults = &w.faults
	defer badgerFiles.close()
	var lastSync time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		closing := false
		select {
		case <-s.wake:
		case <-timer.C:
		case <-s.closing:
			closing = true
		}
		s.mu.Lock()
		if !s.dirty && len(s.barriers) == 0 {
			s.mu.Unlock()
			if closing {
				return
			}
			continue
		}
		if w.opts.Sync == SyncInterval && !closing && len(s.barriers) == 0 && s.dirty {
			if wait := w.opts.SyncInterval - time.Since(lastSync); wait > 0 {
				s.mu.Unlock()
				timer.Reset(wait)
				continue
			}
		}
		acks, ib, files, needDB, barriers, dirty, seq := s.acks, s.ib, s.files, s.needDB, s.barriers, s.dirty, s.seq
		s.acks, s.ib, s.files, s.needDB, s.barriers, s.dirty = nil, newIndexBatch(), make(map[*dataFile]bool), false, nil, false
		asked := s.dbAsked && dirty
		if asked {
			s.dbAsked = false
		}
		s.mu.Unlock()

		// The indexer's ask is put off while Reclaim's DropPrefix holds
		// badger: db.Sync would wait for the whole drop (badger's lock),
		// and every append of this round with it. Held shared, the lock
		// keeps a drop from starting during the sync.
		dbHeld := false
		if asked && !needDB {
			if dbHeld = w.dbWriteMu.TryRLock(); dbHeld {
				needDB = true
			} else {
				s.mu.Lock()
				s.dbAsked = true
				s.mu.Unlock()
			}
		}

		var err error
		// A step of lazy reader positions alone has nothing to sync: its
		// rows only pass on to the indexer.
		synced := dirty && (len(files) > 0 || needDB)
		if synced {
			t0 := time.Now()
			err = w.syncFiles(files, needDB, badgerFiles)
			w.syncNanos.Add(int64(time.Since(t0)))
			fsyncDuration.UpdateDuration(t0)
			w.syncs.Add(1)
			lastSync = time.Now()
		}
		if dbHeld {
			w.dbWriteMu.RUnlock()
		}
		if err != nil {
			// needDB came from the ask alone when dbHeld (see above).
			err = w.syncFailed(err, acks, ib, files, needDB && !dbHeld, dbHeld)
			timer.Reset(indexRetryEvery)
			acks = nil
		} else if dirty {
			var failed bool
			// Only a sync that ran says the disk is well again: a round
			// that synced nothing must not end SyncInterval's caution
			// after a failed sync (syncFailed).
			if acks, failed = w.unpoisoned(acks, ib); !failed && synced {
				w.syncFailing.Store(false)
				w.diskOK(seq)
			}
		}
		// What waited for this sync is durable now: answered here, not
		// after the index write (one badger transaction, several goroutine
		// hand-offs) — recovery indexes synced frames again. Only what
		// depends on the index rows (a replayed dead letter, ib.late) and
		// the barriers wait for the indexer.
		for _, a := range acks {
			w.answer(a, nil)
		}
		// The index is written while the next sync runs.
		w.toIndexer(indexJob{ib: ib, barriers: barriers, syncErr: err}, false)
		if closing {
			return
		}
	}
}

// syncFailed handles a failed sync: its appends fail; its data files are
// poisoned, because after a failed fdatasync Linux may have marked pages
// clean that never reached the disk, so a later fdatasync of the same file
// proves nothing: the committer moves on to a new file, and no later
// append in a poisoned file is acknowledged. The frames are still indexed
// (their producers were told to retry: at least once; checksums catch a
// frame that did not survive), except that a replayed dead letter keeps
// its row in the table rather than risk being in neither place. Until a
// sync succeeds again, SyncInterval acknowledges only after the sync too:
// an entry in a poisoned file could be lost without any crash. needDB
// says rows waited for badger's files, asked that the sync carried out
// only the indexer's ask: that stays an ask, put off during a drop. Syncer
// only.
func (w *WAL) syncFailed(err error, acks []ack, ib *indexBatch, files map[*dataFile]bool, needDB, asked bool) error {
	err = w.diskError("sync", err)
	w.syncFailing.Store(true)
	for f := range files {
		f.poisoned.Store(true)
	}
	for _, a := range acks {
		w.answer(a, err)
	}
	w.failLate(ib, func(ack) bool { return true }, err)
	s := &w.syncer
	s.mu.Lock()
	if needDB {
		// badger's rows are retried with the next sync.
		s.needDB = true
		s.dirty = true
	}
	s.dbAsked = s.dbAsked || asked
	s.mu.Unlock()
	return err
}

// unpoisoned fails the appends written to a poisoned data file (see
// syncFailed), in acks and among ib's late ones, and returns the others.
func (w *WAL) unpoisoned(acks []ack, ib *indexBatch) (ok []ack, failed bool) {
	poisoned := func(a ack) bool { return a.file != nil && a.file.poisoned.Load() }
	// Not a new disk error (that was logged with the failed sync).
	errFor := func(a ack) error {
		return fmt.Errorf("wal: cannot sync in %q: an earlier fdatasync of %q failed", w.dir, a.file.path)
	}
	ok = acks[:0]
	for _, a := range acks {
		if poisoned(a) {
			w.answer(a, errFor(a))
			failed = true
			continue
		}
		ok = append(ok, a)
	}
	for _, a := range ib.late {
		if poisoned(a) {
			w.failLate(ib, poisoned, errFor(a))
			failed = true
			break
		}
	}
	return ok, failed
}

// failLate answers with err the late acks (replayed dead letters) of ib
// that match, and takes their dead-letter deletes out of ib: a dead letter
// whose frame may not have reached the disk stays in the table.
func (w *WAL) failLate(ib *indexBatch, match func(ack) bool, err error) {
	keep := ib.late[:0]
	failed := make(map[uint64]bool)
	for _, a := range ib.late {
		if match(a) {
			w.answer(a, err)
			failed[a.req.deadID] = true
			continue
		}
		keep = append(keep, a)
	}
	ib.late = keep
	if len(failed) == 0 {
		return
	}
	rows := ib.rows[:0]
	for _, r := range ib.rows {
		if !(r.del && r.key[0] == tagDead && failed[beUint64(r.key[1:])]) {
			rows = append(rows, r)
		}
	}
	ib.rows = rows
}

// finishSyncer, at Close, answers what is still waiting after the last
// round: a failed sync or index write that cannot be retried any more.
func (w *WAL) finishSyncer() {
	s := &w.syncer
	s.mu.Lock()
	waiting := s.acks
	if s.retry != nil {
		waiting = append(waiting, s.retry.late...)
	}
	waiting = append(waiting, s.ib.late...)
	barriers := s.barriers
	s.acks, s.barriers = nil, nil
	s.mu.Unlock()
	// The done callbacks run with no lock held (lock order, see WAL).
	for _, a := range waiting {
		w.answer(a, ErrClosed)
	}
	for _, c := range barriers {
		c <- ErrClosed
	}
}

// syncFiles fdatasyncs the data files written since the last sync and,
// when rows that must survive were written, badger's files, all at once.
func (w *WAL) syncFiles(files map[*dataFile]bool, needDB bool, badgerFiles *fileSyncer) error {
	if len(files) == 1 && !needDB {
		// The common case: no goroutine to start and wait for.
		for f := range files {
			return w.fdatasync(f)
		}
	}
	errs := make(chan error, len(files)+1)
	var wg sync.WaitGroup
	if needDB {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbSync := w.db.Sync
			if h := w.faults.Load(); h != nil && h.dbSync != nil {
				dbSync = h.dbSync
			}
			if err := badgerFiles.sync(dbSync); err != nil {
				// After a failed sync of badger's files a later one
				// proves nothing (see syncFailed), and the rows at stake
				// say which stream a frame belongs to: appends stop.
				w.stopAppends(fmt.Errorf("%w: badger's files could not be synced: %w", errBroken, err))
				errs <- err
			}
		}()
	}
	for f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.fdatasync(f); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// fdatasync, not fsync: the size a write changed is data fdatasync writes;
// the times are not needed to read the file back. A file reclaim closed was
// synced before (reclaim runs after a successful sync barrier).
func (w *WAL) fdatasync(f *dataFile) error {
	if h := w.faults.Load(); h != nil && h.fdatasync != nil {
		if err := h.fdatasync(f.path); err != nil {
			return fmt.Errorf("cannot fdatasync %q: %w", f.path, err)
		}
	}
	fd := f.current()
	if fd == nil {
		return nil
	}
	size := int64(-1) // for the power-loss test's observer
	if h := w.faults.Load(); h != nil && h.dataSynced != nil {
		if fi, err := fd.Stat(); err == nil {
			size = fi.Size()
		}
	}
	rc, err := fd.SyscallConn()
	if err != nil {
		return fmt.Errorf("cannot fdatasync %q: %w", f.path, err)
	}
	var serr error
	// Control holds a reference: a concurrent Close waits for it.
	if err := rc.Control(func(s uintptr) { serr = unix.Fdatasync(int(s)) }); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return nil
		}
		serr = err
	}
	if serr != nil {
		return fmt.Errorf("cannot fdatasync %q: %w", f.path, serr)
	}
	if h := w.faults.Load(); h != nil && h.dataSynced != nil && size >= 0 {
		h.dataSynced(f.path, size)
	}
	return nil
}
