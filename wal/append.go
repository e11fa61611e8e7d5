package wal

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The group commit. Append only queues; one committer goroutine takes
// everything queued (up to MaxGroupBytes/MaxGroupEntries), assigns offsets
// and writes the group as one badger transaction (SyncWrites off). The
// syncer goroutine (sync.go) then fsyncs once for everything written since
// its previous fsync and runs the done callbacks that waited for it. While
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
	planc chan dropResult
	fn    func(tw *txnWork) error // reqFunc; answered on errc
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
	retryDrops  []dropTarget // segments whose DropPrefix failed
}

type ack struct {
	req  *request
	base int64
}

// Append queues e for stream k and returns at once; done is called exactly
// once, from one of the WAL's goroutines (never from inside Append), with
// the offset assigned to the entry's first record or an error (ErrFull,
// ErrClosed, ErrInvalidEntry, ErrNoKey or a wrapped disk error). With
// durable=false done runs once the entry is written (SyncInterval) or
// synced (SyncBatch); with durable=true always only once it is synced.
// e.Data must not be modified until done runs. Safe for concurrent use;
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

// txnWork is the state of one badger transaction being built.
type txnWork struct {
	txn     *badger.Txn
	metas   map[*stream]*streamMeta
	newSt   []*stream
	newSegs []newSeg
	creds   []string
	acks    []ack
	bytes   int64
	est     int64 // badger's size estimate of the transaction, roughly
	keys    int64
}

// full tells whether one more request might take the transaction over
// badger's limits (ErrTxnTooBig); the group then continues in a new one.
func (tw *txnWork) full(db *badger.DB) bool {
	return tw.keys+8 > db.MaxBatchCount()/2 || tw.est+4096 > db.MaxBatchSize()/2
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
	return &txnWork{txn: w.db.NewTransaction(true), metas: make(map[*stream]*streamMeta)}
}

// writeGroup writes one group; on return each append is acknowledged,
// failed, or handed to the syncer to wait for its fsync.
func (w *WAL) writeGroup(g []*request) {
	tw := w.newWork()
	for _, r := range g {
		if tw.full(w.db) {
			w.flush(tw)
			tw = w.newWork()
		}
		switch r.kind {
		case reqAppend:
			if err := w.addAppend(tw, r); err != nil {
				r.done(0, err)
			}
		case reqCommit:
			k, v := sidKey(tagPosition, r.st.id), r.pos.encode()
			if err := tw.txn.Set(k, v); err != nil {
				r.errc <- w.diskError("write reader position", err)
				continue
			}
			tw.note(k, v)
			tw.acks = append(tw.acks, ack{req: r})
		case reqFunc:
			if err := r.fn(tw); err != nil {
				r.errc <- err
				continue
			}
			tw.acks = append(tw.acks, ack{req: r})
		case reqPlan:
			// Reclaim planning needs every earlier write applied and
			// synced: it must only trust positions that survive a crash.
			w.flush(tw)
			w.syncBarrier()
			r.planc <- w.dropConsumed()
			tw = w.newWork()
		}
	}
	w.flush(tw)
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
	txn := tw.txn
	st := w.byKey[r.key] // the committer is the only writer of byKey
	if st == nil {
		for _, n := range tw.newSt {
			if n.key == r.key {
				st = n
			}
		}
	}
	if st == nil {
		st = &stream{id: w.nextSID + 1 + uint32(len(tw.newSt)), key: r.key, wake: make(chan struct{})}
		k, v := sidKey(tagStream, st.id), encodeStreamKey(r.key)
		if err := txn.Set(k, v); err != nil {
			return w.diskError("write", err)
		}
		tw.note(k, v)
		tw.newSt = append(tw.newSt, st)
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
	// A new segment: the first one, one rolled by reclaim (HasSeg false,
	// Seg already advanced) or when the current one is full.
	if !m.HasSeg || m.SegBytes >= w.opts.SegmentBytes {
		if m.HasSeg {
			m.Seg++
		}
		m.HasSeg, m.SegBytes = true, 0
		k, v := segmentKey(st.id, m.Seg), be64(m.Next)
		if err := txn.Set(k, v); err != nil {
			return w.diskError("write", err)
		}
		tw.note(k, v)
		tw.newSegs = append(tw.newSegs, newSeg{st, segInfo{seg: m.Seg, first: m.Next}})
	}
	base := m.Next
	val := encodeEntry(e, base, m.CumBytes, m.CumEntries, hash)
	ek := entryKey(st.id, m.Seg, base)
	if err := txn.Set(ek, val); err != nil {
		return w.diskError("write", err)
	}
	tw.note(ek, val)
	if _, ok := tw.metas[st]; ok {
		tw.note(sidKey(tagMeta, st.id), make([]byte, metaLen)) // written by flush
	}
	if r.deadID != 0 {
		if err := txn.Delete(deadKey(r.deadID)); err != nil {
			return w.diskError("write", err)
		}
		tw.note(deadKey(r.deadID), nil)
	}
	m.Next += int64(e.Records)
	m.SegBytes += int64(len(val))
	m.CumBytes += int64(len(val))
	m.CumEntries++
	tw.bytes += int64(len(val))
	tw.acks = append(tw.acks, ack{req: r, base: base})
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

// flush commits the transaction (without fsync) and applies it to memory.
func (w *WAL) flush(tw *txnWork) {
	defer tw.txn.Discard()
	if len(tw.acks) == 0 && len(tw.newSt) == 0 {
		return
	}
	cs := &w.committerSt
	var err error
	for st, m := range tw.metas {
		if err = tw.txn.Set(sidKey(tagMeta, st.id), m.encode()); err != nil {
			break
		}
	}
	if err == nil && cs.needVersion {
		err = tw.txn.Set(versionKey, []byte(formatVersion))
	}
	if err == nil {
		t0 := time.Now()
		err = tw.txn.Commit()
		w.writeNanos.Add(int64(time.Since(t0)))
		w.groups.Add(1)
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
	w.diskOK()
	cs.needVersion = false
	if len(tw.newSt) > 0 {
		w.mu.Lock()
		for _, st := range tw.newSt {
			w.byKey[st.key] = st
			w.byID[st.id] = st
			w.list = append(w.list, st)
			w.nextSID = max(w.nextSID, st.id)
		}
		close(w.streamsWake)
		w.streamsWake = make(chan struct{})
		w.mu.Unlock()
	}
	written := make(map[*stream]position, len(tw.metas))
	for st, m := range tw.metas {
		st.meta = *m
		written[st] = position{Offset: m.Next, CumBytes: m.CumBytes, CumEntries: m.CumEntries}
	}
	for _, ns := range tw.newSegs {
		ns.st.mu.Lock()
		ns.st.segs = append(ns.st.segs, ns.seg)
		ns.st.mu.Unlock()
	}
	var needSync []ack
	for _, a := range tw.acks {
		r := a.req
		switch {
		case r.kind == reqCommit || r.kind == reqFunc:
			if r.kind == reqCommit {
				r.st.mu.Lock()
				r.st.committed = r.pos
				r.st.mu.Unlock()
			}
			if w.opts.Sync == SyncInterval {
				r.errc <- nil
			} else {
				needSync = append(needSync, a)
			}
		case w.opts.Sync == SyncInterval && !r.durable:
			r.done(a.base, nil)
		default:
			needSync = append(needSync, a)
		}
	}
	w.toSyncer(needSync, written)
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
	// Marked known now so the rest of the group does not rewrite it;
	// forgotten again in flush if the transaction fails.
	w.knownCreds[string(ck)] = true
	tw.creds = append(tw.creds, string(ck))
	return nil
}
