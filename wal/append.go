package wal

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The group commit. Append only queues; one committer goroutine takes
// everything queued (up to MaxGroupBytes/MaxGroupEntries), assigns offsets,
// writes the group's frames to the active data file with one write(2), and
// what else it changes (new streams, credentials, reader positions) as one
// badger transaction (SyncWrites off). The syncer goroutine (sync.go) then
// fdatasyncs once for everything written since its previous sync, runs the
// done callbacks that waited for it, and writes the index rows of the
// synced frames to badger. While
// one group is written and another synced, new appends pile up and become
// the next group, so the number of fsyncs adapts to the load without any
// timer or linger.

type reqKind uint8

const (
	reqAppend reqKind = iota
	reqCommit         // persist a reader position
	reqPlan           // reclaim: choose and roll consumed segments
	reqFunc           // dead-letter table updates
)

type request struct {
	kind    reqKind
	key     StreamKey
	entry   *Entry
	durable bool
	done    func(int64, error)
	deadID  uint64 // Replay: the dead letter deleted in the same transaction

	st    *stream    // reqCommit
	pos   position   // reqCommit
	errc  chan error // reqCommit
	planc chan dropPlan
	fn    func(tw *txnWork) error // reqFunc; answered on errc

	// spansOnly (reqCommit, Reader.MarkDelivered): only the stream's
	// delivered spans are written, not pos.
	spansOnly bool

	// lazy (reqCommit, Reader.CommitAsync, Reader.MarkDelivered):
	// answered at once; its rows are written by the indexer after the
	// group's sync, and badger's files are synced for them at most every
	// indexSyncEvery, and before reclaim trusts them (addCommit).
	lazy bool
}

func (r *request) size() int {
	if r.kind == reqAppend && r.entry != nil {
		return len(r.entry.Data) + 128
	}
	return 64
}

// committerState is owned by the committer goroutine.
type committerState struct {
	needVersion bool
	frameBuf    []byte // reused for each step's frames (write(2) copies them)
	// lazyDirty says a lazy reader position was handed to the indexer
	// since reclaim last had badger's files synced.
	lazyDirty bool
	// indexedGen counts the sync barriers that found everything handed
	// over so far indexed (positionsWritten).
	indexedGen uint64
}

type ack struct {
	req  *request
	base int64
	file *dataFile // where an append's frame is
}

// Append queues e for stream k and returns at once; done is called exactly
// once, from one of the WAL's goroutines (never from inside Append), with
// the offset assigned to the entry's first record or an error (ErrFull,
// ErrClosed, ErrInvalidEntry, ErrNoKey or a wrapped disk error). With
// durable=false done runs once the entry is written (SyncInterval) or
// synced (SyncBatch); with durable=true always only once it is synced.
// A Reader sees the entry once the indexer has written its rows, just
// after its sync: possibly after done ran (recovery indexes synced frames
// again, so done does not wait for that). e.Data must not be modified
// until done runs. Safe for concurrent use;
// appends queued one after another get increasing offsets in that order.
// done must not block for long: it holds up the acknowledgements after it.
func (w *WAL) Append(k StreamKey, e *Entry, durable bool, done func(baseOffset int64, err error)) {
	w.enqueue(&request{kind: reqAppend, key: k, entry: e, durable: durable, done: done})
}

// AppendWait is Append for callers that can block: it returns when done
// would be called. Safe for concurrent use.
func (w *WAL) AppendWait(k StreamKey, e *Entry, durable bool) (int64, error) {
	type res struct {
		off int64
		err error
	}
	c := make(chan res, 1)
	w.Append(k, e, durable, func(off int64, err error) { c <- res{off, err} })
	r := <-c
	return r.off, r.err
}

func (w *WAL) enqueue(r *request) {
	w.qmu.Lock()
	if w.closed.Load() {
		w.qmu.Unlock()
		w.fail(r, ErrClosed)
		return
	}
	w.queue = append(w.queue, r)
	w.qmu.Unlock()
	select {
	case w.qwake <- struct{}{}:
	default:
	}
}

// fail answers a request that will not be written. Called outside the
// committer (after Close) the callback runs on its own goroutine, so a
// caller holding a lock around Append cannot deadlock on its own done.
func (w *WAL) fail(r *request, err error) {
	switch r.kind {
	case reqAppend:
		if r.done != nil {
			go r.done(0, err)
		}
	case reqCommit, reqFunc:
		r.errc <- err
	case reqPlan:
		close(r.planc)
	}
}

// takeGroup removes the next group from the queue.
func (w *WAL) takeGroup() []*request {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	n, bytes := 0, 0
	for n < len(w.queue) && n < w.opts.MaxGroupEntries {
		bytes += w.queue[n].size()
		n++
		if bytes >= w.opts.MaxGroupBytes {
			break
		}
	}
	g := make([]*request, n)
	copy(g, w.queue)
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	if len(w.queue) == 0 && cap(w.queue) > 4096 {
		w.queue = nil // do not pin a burst's backing array
	}
	return g
}

func (w *WAL) commitLoop() {
	defer func() {
		// Everything written is handed to the syncer; it syncs once more
		// and exits.
		close(w.syncer.closing)
		<-w.syncer.done
		close(w.done)
	}()
	for {
		closing := false
		select {
		case <-w.qwake:
		case <-w.closing:
			closing = true
		}
		for {
			g := w.takeGroup()
			if len(g) == 0 {
				break
			}
			w.writeGroup(g)
		}
		if closing {
			// Appends racing with Close may still be queued: the closed
			// flag is set, so nothing more arrives after this drain.
			w.qmu.Lock()
			rest := w.queue
			w.queue = nil
			w.qmu.Unlock()
			for len(rest) > 0 {
				n := min(len(rest), w.opts.MaxGroupEntries)
				w.writeGroup(rest[:n])
				rest = rest[n:]
			}
			return
		}
	}
}

// txnWork is one step of a group: the committer's own badger rows (stream
// registry, credentials, reader positions, dead letters) in one
// transaction, and the frames of its appends, written to the active data
// file after that transaction commits.
type txnWork struct {
	txn     *badger.Txn
	metas   map[*stream]*streamMeta
	newSt   []*stream
	newSegs []newSeg
	creds   []string
	acks    []ack
	frames  []byte      // frames for the active data file
	file    *dataFile   // the active file when the step started
	ib      *indexBatch // index rows of the frames
	posRows []kv        // reader positions and spans for the indexer (addCommit)
	needDB  bool        // rows that must be synced before the acks
	est     int64       // badger's size estimate of the transaction, roughly
	keys    int64
}

// full tells whether one more request might take the transaction over
// badger's limits (ErrTxnTooBig) or the step over MaxGroupBytes; the group
// then continues in a new step.
func (tw *txnWork) full(db *badger.DB, maxBytes int) bool {
	return tw.keys+8 > db.MaxBatchCount()/2 || tw.est+4096 > db.MaxBatchSize()/2 || len(tw.frames) >= maxBytes
}

// note accounts for a key written in the transaction as badger estimates
// it: values from the ValueThreshold on count as a 12-byte pointer.
func (tw *txnWork) note(key, val []byte) {
	tw.keys++
	v := int64(len(val))
	if v >= valueThreshold {
		v = 12
	}
	tw.est += int64(len(key)) + 8 + v + 2
}

type newSeg struct {
	st  *stream
	seg segInfo
}

func (w *WAL) newWork() *txnWork {
	return &txnWork{
		txn:    w.db.NewTransaction(true),
		metas:  make(map[*stream]*streamMeta),
		ib:     newIndexBatch(),
		frames: w.committerSt.frameBuf[:0],
	}
}

// writeGroup writes one group; on return each append is acknowledged,
// failed, or handed to the syncer to wait for its fsync.
func (w *WAL) writeGroup(g []*request) {
	tw := w.newWork()
	for _, r := range g {
		if tw.full(w.db, w.opts.MaxGroupBytes) {
			w.flush(tw)
			tw = w.newWork()
		}
		switch r.kind {
		case reqAppend:
			if err := w.addAppend(tw, r); err != nil {
				r.done(0, err)
			}
		case reqCommit:
			if !r.lazy && w.lazyQueued(r.st) {
				// An earlier lazy row of the stream must not land after
				// this one (positions.go).
				w.flush(tw)
				tw = w.newWork()
				if err := w.positionsWritten(); err != nil {
					r.errc <- fmt.Errorf("wal: stream %v: cannot commit while its earlier position waits to be written: %w", r.st.key, err)
					continue
				}
			}
			if err := w.addCommit(tw, r); err != nil {
				r.errc <- err
				continue
			}
			tw.acks = append(tw.acks, ack{req: r})
		case reqFunc:
			if err := r.fn(tw); err != nil {
				r.errc <- err
				continue
			}
			tw.needDB = true
			tw.acks = append(tw.acks, ack{req: r})
		case reqPlan:
			// Reclaim planning needs every earlier write applied, synced
			// and indexed: it must only trust positions that survive a
			// crash.
			w.flush(tw)
			err := w.positionsWritten()
			if err == nil && w.committerSt.lazyDirty {
				// Lazy positions are written by the indexer, which the
				// barrier waited for: now badger's files are synced
				// for them.
				w.syncDBNext()
				err = w.syncBarrier()
				w.committerSt.lazyDirty = err != nil
			}
			if err != nil {
				r.planc <- dropPlan{err: fmt.Errorf("nothing reclaimed while writes fail: %w", err)}
			} else {
				r.planc <- w.planDrops()
			}
			tw = w.newWork()
		}
	}
	w.flush(tw)
}

// activeFile returns the data file appends go to, starting a new one when
// the current one is full or poisoned (see syncFailed).
// Committer only.
func (w *WAL) activeFile() (*dataFile, error) {
	d := w.data
	if d.broken != nil {
		w.stopAppends(d.broken)
	}
	if err := w.stopped.Load(); err != nil {
		return nil, w.diskError("append", *err)
	}
	if d.active != nil && d.activeSize < w.opts.DataFileBytes && !d.active.poisoned.Load() {
		return d.active, nil
	}
	if _, err := d.startFile(); err != nil {
		return nil, w.diskError("start a data file", err)
	}
	if h := w.faults.Load(); h != nil && h.dataFileDurable != nil {
		h.dataFileDurable(d.active.path)
	}
	return d.active, nil
}

func (w *WAL) addAppend(tw *txnWork, r *request) error {
	e := r.entry
	if e == nil || e.Records <= 0 {
		return fmt.Errorf("%w: an entry needs at least one record", ErrInvalidEntry)
	}
	hash, err := w.crypt.hash(e.Credential)
	if err != nil {
		return err
	}
	if err := w.admit(int64(len(e.Data)) + 128); err != nil {
		return err
	}
	if tw.file == nil {
		if tw.file, err = w.activeFile(); err != nil {
			return err
		}
	}
	txn := tw.txn
	st := w.streams.byKey[r.key] // the committer is the only writer of byKey
	if st == nil {
		for _, n := range tw.newSt {
			if n.key == r.key {
				st = n
			}
		}
	}
	if st == nil {
		st = &stream{id: w.streams.nextID + 1 + uint32(len(tw.newSt)), key: r.key, wake: make(chan struct{})}
		k, v := sidKey(tagStream, st.id), encodeStreamKey(r.key)
		if err := txn.Set(k, v); err != nil {
			return w.diskError("write", err)
		}
		tw.note(k, v)
		tw.newSt = append(tw.newSt, st)
		tw.needDB = true
	}
	m := tw.metas[st]
	if m == nil {
		c := st.meta
		m = &c
		tw.metas[st] = m
	}
	if err := w.ensureCred(tw, e.Credential, hash); err != nil {
		return err
	}
	start := len(tw.frames)
	tw.frames = appendFrame(tw.frames, st.id, r.deadID, func(b []byte) []byte {
		return appendEntry(b, e, m.Next, m.CumBytes, m.CumEntries, hash)
	})
	ptr := dataPtr{file: tw.file.num, pos: w.data.activeSize + int64(start), n: uint32(len(tw.frames) - start)}
	base, seg := tw.ib.place(st, m, e.Records, int(ptr.n)-frameHeaderLen, ptr, w.opts.SegmentBytes)
	if seg != nil {
		tw.newSegs = append(tw.newSegs, newSeg{st, *seg})
	}
	if r.deadID != 0 {
		tw.ib.rows = append(tw.ib.rows, kv{key: deadKey(r.deadID), del: true})
	}
	tw.acks = append(tw.acks, ack{req: r, base: base, file: tw.file})
	return nil
}

func be64(v int64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

// flush commits the step's own rows (without fsync), writes its frames to
// the active data file, applies it to memory and hands the rest to the
// syncer.
func (w *WAL) flush(tw *txnWork) {
	defer tw.txn.Discard()
	if cap(tw.frames) <= 2*w.opts.MaxGroupBytes {
		defer func() { w.committerSt.frameBuf = tw.frames[:0] }()
	}
	if len(tw.acks) == 0 && len(tw.newSt) == 0 {
		return
	}
	cs := &w.committerSt
	seq := w.diskSeq() // before the writes: a sync proves them good only if no error came since
	var err error
	if cs.needVersion {
		err = tw.txn.Set(versionKey, []byte(formatVersion))
		tw.keys++
		tw.needDB = true
	}
	t0 := time.Now()
	if err == nil && (tw.keys > 0 || tw.needDB) {
		err = w.commitTxn(tw.txn)
	}
	if err != nil {
		if errors.Is(err, badger.ErrTxnTooBig) {
			err = fmt.Errorf("group too large for one transaction (lower MaxGroupEntries): %w", err)
		}
		err = w.diskError("write", err)
		for _, c := range tw.creds {
			delete(w.knownCreds, c)
		}
		for _, a := range tw.acks {
			w.answer(a, err)
		}
		return
	}
	cs.needVersion = false
	// The step's own rows are stored: only its appends depend on the
	// frames.
	var appendErr error
	if len(tw.frames) > 0 {
		if appendErr = w.data.write(tw.frames); appendErr != nil {
			appendErr = w.diskError("write", appendErr)
			tw.ib = newIndexBatch()
			clear(tw.metas)
			tw.newSegs = nil
		}
	}
	tw.ib.posRows = append(tw.ib.posRows, tw.posRows...)
	w.writeNanos.Add(int64(time.Since(t0)))
	w.groups.Add(1)
	// New streams are registered even when their frames failed: their
	// rows are stored, and an id is never given to another stream.
	if len(tw.newSt) > 0 {
		w.streams.mu.Lock()
		for _, st := range tw.newSt {
			w.streams.byKey[st.key] = st
			w.streams.byID[st.id] = st
			w.streams.list = append(w.streams.list, st)
			w.streams.nextID = max(w.streams.nextID, st.id)
		}
		close(w.streams.wake)
		w.streams.wake = make(chan struct{})
		w.streams.mu.Unlock()
	}
	for st, m := range tw.metas {
		st.meta = *m
		tw.ib.setMeta(st, *m)
	}
	for _, ns := range tw.newSegs {
		ns.st.mu.Lock()
		ns.st.segs = append(ns.st.segs, ns.seg)
		ns.st.mu.Unlock()
	}
	if tw.file != nil && appendErr == nil {
		tw.ib.cp = dataPos{file: tw.file.num, pos: w.data.activeSize}
	}
	var needSync []ack
	for _, a := range tw.acks {
		r := a.req
		switch {
		case r.kind == reqAppend && appendErr != nil:
			r.done(0, appendErr)
		case r.kind == reqCommit || r.kind == reqFunc:
			if r.kind == reqCommit && !r.spansOnly {
				r.st.mu.Lock()
				r.st.committed = r.pos
				r.st.mu.Unlock()
			}
			if w.opts.Sync == SyncInterval || r.lazy {
				r.errc <- nil
			} else {
				needSync = append(needSync, a)
			}
		case r.deadID != 0:
			// A replayed dead letter leaves the table in the index
			// transaction: answered once that is written.
			tw.ib.late = append(tw.ib.late, a)
		case w.opts.Sync == SyncInterval && !r.durable && !w.syncFailing.Load():
			r.done(a.base, nil)
		default:
			needSync = append(needSync, a)
		}
	}
	w.toSyncer(needSync, tw.ib, tw.file, tw.needDB, seq)
}

func (w *WAL) answer(a ack, err error) {
	switch a.req.kind {
	case reqAppend:
		a.req.done(a.base, err)
	case reqCommit, reqFunc:
		a.req.errc <- err
	}
}

// ensureCred writes the credential row unless it exists. Committer only.
func (w *WAL) ensureCred(tw *txnWork, c Credential, hash [8]byte) error {
	ck := credKey(c.AccessKeyID, hash)
	if w.knownCreds[string(ck)] {
		return nil
	}
	row, err := w.crypt.seal(ck, c.AccessKeySecret)
	if err != nil {
		return err
	}
	if err := tw.txn.Set(ck, row); err != nil {
		return w.diskError("write", err)
	}
	tw.note(ck, row)
	tw.needDB = true
	// Marked known now so the rest of the group does not rewrite it;
	// forgotten again in flush if the transaction fails.
	w.knownCreds[string(ck)] = true
	tw.creds = append(tw.creds, string(ck))
	return nil
}
