package wal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/dgraph-io/badger/v4"
)

// Reader reads one stream in offset order from its committed position, for
// delivery. It only sees entries that are completely written and synced —
// or whose sync failed: their appends were refused, so their producers
// retry, and delivering them costs a duplicate (at least once); a frame
// that did not survive fails its checksum.
// A Reader is used by one goroutine at a time; a stream has at most one open
// Reader.
type Reader struct {
	w      *WAL
	st     *stream
	cursor int64      // offset the next Read starts at
	ends   []entryEnd // entries returned and not yet committed, in order
	closed bool
	// async is the last CommitAsync's request, until its answer is seen;
	// lazyPos is its position while no later Commit covers it, so that
	// Commit can make it durable.
	async   *request
	lazyPos *position
	// limit, once a head reader split off (SplitHead), is where it
	// started: this reader reads up to it, then returns ErrHeadReached.
	limit int64
	// start is a head reader's first position, until it returns entries.
	start *position
	// frames lends the buffers entries are read into when the caller
	// reuses them (ReuseData); nil: a new buffer per entry.
	frames *framePool
}

// entryEnd is where the stream stands after a returned entry.
type entryEnd struct {
	pos position
	// frame holds the entry's Data when the Reader reuses buffers: it
	// goes back to the pool once a commit covers the entry.
	frame *frameBuf
}

// CorruptError reports an entry that failed its checks. Read returns it
// (wrapping ErrCorrupt) when the corrupt entry is the first one due; the
// entries before it have been returned by earlier Reads. To skip it,
// Commit(Next); otherwise every Read returns the same error.
type CorruptError struct {
	Stream StreamKey
	Offset int64 // the entry's base offset
	Next   int64 // offset of the entry after it
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: stream %v: entry at offset %d unreadable (next entry at %d): %v", e.Stream, e.Offset, e.Next, e.Err)
}

func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// Reader opens the reader of stream k, positioned at its committed offset.
// It fails with ErrNotFound for a stream that has no entries yet and with
// ErrReaderOpen if the stream's reader is open. Safe for concurrent use.
func (w *WAL) Reader(k StreamKey) (*Reader, error) {
	if w.closed.Load() {
		return nil, ErrClosed
	}
	st := w.lookup(k)
	if st == nil {
		return nil, fmt.Errorf("stream %v: %w", k, ErrNotFound)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.reader != nil {
		return nil, fmt.Errorf("stream %v: %w", k, ErrReaderOpen)
	}
	r := &Reader{w: w, st: st, cursor: st.committed.Offset}
	st.reader = r
	return r, nil
}

// Key returns the reader's stream.
func (r *Reader) Key() StreamKey { return r.st.key }

// Committed returns the stream's committed position: the offset reading
// resumes from after a restart.
func (r *Reader) Committed() int64 {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	return r.st.committed.Offset
}

// Position returns the offset the next Read starts at.
func (r *Reader) Position() int64 { return r.cursor }

// ReuseData makes the Reader read entries into buffers it reuses instead of
// a new buffer per entry. It changes who owns an entry's Data: with
// ReuseData, the bytes of Data stay valid only until a Commit or
// CommitAsync at or past the entry's end (BaseOffset+Records) is called;
// the Reader may then overwrite them with a later entry, so the caller
// must be done with Data — converted, sent, dead-lettered — before it
// commits, and must keep no slice of it. Everything else of an Entry
// (strings, Credential) stays the caller's. Entries dropped by Rewind or
// Close are not reused. Without ReuseData, Data is the caller's to keep.
// Call it before the first Read.
func (r *Reader) ReuseData() { r.frames = sharedFrames }

// Rewind makes the next Read start again at the committed position, e.g.
// after a failed delivery that will be retried from scratch. The entries
// returned since the last commit keep their Data (even with ReuseData).
func (r *Reader) Rewind() {
	r.cursor = r.Committed()
	clear(r.ends)
	r.ends = r.ends[:0]
}

// Close releases the stream for another Reader. It does not commit.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.st.mu.Lock()
	if r.st.reader == r {
		r.st.reader = nil
	}
	if r.st.head == r {
		r.st.head = nil
	}
	r.st.mu.Unlock()
	return nil
}

// Read returns the next entries after Position, at least one, stopping
// before maxEntries or once maxBytes of batch data are collected (a single
// larger entry is still returned whole). It blocks until an entry is there,
// ctx is done (ctx.Err()) or the WAL closes (ErrClosed). Entries carry
// their BaseOffset and their Credential with the secret decrypted; their
// Data is theirs to keep, or with ReuseData theirs until they commit past
// the entry. A corrupt entry yields a *CorruptError.
func (r *Reader) Read(ctx context.Context, maxBytes, maxEntries int) ([]*Entry, error) {
	if maxEntries <= 0 {
		maxEntries = 1
	}
	for {
		if r.closed || r.w.closed.Load() {
			return nil, ErrClosed
		}
		if r.limit > 0 && r.cursor >= r.limit {
			return nil, ErrHeadReached
		}
		r.st.mu.Lock()
		readable := r.st.readable
		wake := r.st.wake
		r.st.mu.Unlock()
		if r.limit > 0 {
			readable.Offset = min(readable.Offset, r.limit)
		}
		if r.cursor < readable.Offset {
			es, err := r.readSafe(readable.Offset, maxBytes, maxEntries)
			if len(es) > 0 || err != nil {
				return es, err
			}
			// The stream says entries are there but none is: they were
			// lost (damaged files). Report the range so it can be skipped
			// instead of blocking forever.
			return nil, r.missing(readable.Offset)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// readSafe turns a panic in badger's decoding of damaged files into an
// error: a corrupt disk must not take the relay down. The entries read
// before the panic are good and are returned (the cursor has passed
// them); the damage is then the first thing the next Read meets, and it
// is reported as a CorruptError whose Next is the entry after it, so that
// skipping it never skips an entry that was read but not returned.
func (r *Reader) readSafe(limit int64, maxBytes, maxEntries int) (es []*Entry, err error) {
	if !r.w.acquireDB() {
		return nil, ErrClosed
	}
	defer r.w.releaseDB()
	var out []*Entry
	defer func() {
		if p := recover(); p != nil {
			if len(out) > 0 {
				es, err = out, nil
				return
			}
			es, err = nil, r.damaged(limit, fmt.Errorf("%w: badger: %v", ErrCorrupt, p))
		}
	}()
	return r.read(limit, maxBytes, maxEntries, &out)
}

// damaged reports the entry at the cursor, on which badger panicked, as a
// CorruptError up to the next index row. If that row cannot be found
// either, it is a plain error: the writer retries it rather than skip
// entries it cannot name.
func (r *Reader) damaged(limit int64, cause error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wal: stream %v: entry at offset %d unreadable, and so is the index after it (%v): %w", r.st.key, r.cursor, p, cause)
		}
	}()
	st := r.st
	st.mu.Lock()
	seg := segmentFor(st.segs, r.cursor)
	st.mu.Unlock()
	txn := r.w.db.NewTransaction(false)
	defer txn.Discard()
	it, prefix := entriesFrom(txn, st.id, seg, r.cursor+1)
	defer it.Close()
	next := limit
	for ; it.ValidForPrefix(prefix); it.Next() {
		if _, _, off, ok := parseEntryKey(it.Item().Key()); ok && off > r.cursor {
			next = min(off, limit)
			break
		}
	}
	r.skippable(next)
	return &CorruptError{Stream: st.key, Offset: r.cursor, Next: next, Err: cause}
}

// itemHook, when set by a test, runs before each index row is decoded.
var itemHook func(off int64)

// read appends to *out as it goes, so that readSafe has what was read
// before a panic.
func (r *Reader) read(limit int64, maxBytes, maxEntries int, out *[]*Entry) ([]*Entry, error) {
	st := r.st
	st.mu.Lock()
	seg := segmentFor(st.segs, r.cursor)
	var spans []span
	if len(st.spans) > 0 {
		spans = slices.Clone(st.spans)
	}
	st.mu.Unlock()

	txn := r.w.db.NewTransaction(false)
	defer txn.Discard()
	it, prefix := entriesFrom(txn, st.id, seg, r.cursor)
	defer it.Close()

	bytes := 0
	for ; it.ValidForPrefix(prefix); it.Next() {
		_, _, off, ok := parseEntryKey(it.Item().Key())
		if !ok || off < r.cursor {
			continue
		}
		if off >= limit {
			break
		}
		if off > r.cursor {
			// Entries are contiguous (each starts where the previous one
			// ends), so a jump means entries were lost.
			if len(*out) > 0 {
				return *out, nil
			}
			return nil, r.missing(off)
		}
		if itemHook != nil {
			itemHook(off)
		}
		se, n, err := r.decodeItem(txn, it.Item())
		if err != nil {
			if len(*out) > 0 {
				return *out, nil // deliver what is good; the error comes next Read
			}
			next := limit
			it.Next()
			if it.ValidForPrefix(prefix) {
				if _, _, n, ok := parseEntryKey(it.Item().Key()); ok && n < limit {
					next = n
				}
			}
			if errors.Is(err, ErrCorrupt) {
				r.skippable(next)
				return nil, &CorruptError{Stream: st.key, Offset: off, Next: next, Err: err}
			}
			return nil, err
		}
		e := &se.Entry
		*out = append(*out, e)
		bytes += len(e.Data)
		end := off + int64(e.Records)
		if spans != nil && delivered(spans, off, end) {
			e.Delivered = true
		}
		r.ends = append(r.ends, entryEnd{pos: position{Offset: end, CumBytes: se.CumBytes + int64(n), CumEntries: se.CumEntries + 1}, frame: se.frame})
		r.cursor = end
		if len(*out) >= maxEntries || bytes >= maxBytes {
			break
		}
	}
	return *out, nil
}

func (r *Reader) missing(limit int64) error {
	r.skippable(limit)
	return &CorruptError{Stream: r.st.key, Offset: r.cursor, Next: limit, Err: fmt.Errorf("%w: no entries stored from offset %d to %d", ErrCorrupt, r.cursor, limit)}
}

// skippable lets Commit(next) pass entries that cannot be read: it notes
// next as a position, with the byte and entry counts of the last entry
// read (the unreadable ones add nothing to them).
func (r *Reader) skippable(next int64) {
	if n := len(r.ends); n > 0 && r.ends[n-1].pos.Offset == next {
		return
	}
	last := r.lastPos()
	r.ends = append(r.ends, entryEnd{pos: position{Offset: next, CumBytes: last.CumBytes, CumEntries: last.CumEntries}})
}

// lastPos is the stream position after the last returned entry.
func (r *Reader) lastPos() position {
	if n := len(r.ends); n > 0 {
		return r.ends[n-1].pos
	}
	if r.lazyPos != nil {
		return *r.lazyPos
	}
	if r.start != nil {
		return *r.start
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	return r.st.committed
}

// decodeItem loads the entry an index row points to, with its secret. It
// returns the entry and the length of its stored encoding.
func (r *Reader) decodeItem(txn *badger.Txn, item *badger.Item) (*storedEntry, int, error) {
	se, n, err := r.w.itemEntry(item, r.frames)
	if err != nil {
		return nil, 0, err
	}
	secret, err := r.w.secret(txn, se.Entry.Credential.AccessKeyID, se.CredHash)
	if err != nil {
		r.frames.put(se.frame)
		return nil, 0, err
	}
	se.Entry.Credential.AccessKeySecret = secret
	return se, n, nil
}

// segmentFor returns the segment holding offset off: the last one starting
// at or before it.
func segmentFor(segs []segInfo, off int64) uint64 {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].first > off })
	if i == 0 {
		if len(segs) > 0 {
			return segs[0].seg
		}
		return 0
	}
	return segs[i-1].seg
}

// secret returns the decrypted secret of a credential row, cached.
func (w *WAL) secret(txn *badger.Txn, akid string, hash [8]byte) (string, error) {
	if hash == ([8]byte{}) {
		return "", nil
	}
	k := credKey(akid, hash)
	if s, ok := w.credSecrets.Load(string(k)); ok {
		return s.(string), nil
	}
	item, err := txn.Get(k)
	if err != nil {
		return "", fmt.Errorf("%w: credential row for %s: %w", ErrCorrupt, akid, err)
	}
	row, err := item.ValueCopy(nil)
	if err != nil {
		return "", fmt.Errorf("%w: credential row for %s: %w", ErrCorrupt, akid, err)
	}
	s, err := w.crypt.open(k, row)
	if err != nil {
		return "", fmt.Errorf("credential %s: %w", akid, err)
	}
	w.credSecrets.Store(string(k), s)
	return s, nil
}

// Commit persists next as the stream's committed position: every entry
// before it is delivered and may be reclaimed, and a Reader opened later
// (also after a restart) starts there. next must be the end
// (BaseOffset+Records) of an entry returned by this Reader since the last
// Commit, or a CorruptError's Next, or the last CommitAsync's position
// (which this makes durable). It returns once the position is written
// (SyncInterval) or synced (SyncBatch); when a CommitAsync or
// MarkDelivered of the stream is still on its way to badger, it first
// waits for that (one sync and index write, see positions.go), so that
// the older row cannot land after this one.
func (r *Reader) Commit(next int64) error {
	if err := r.asyncErr(); err != nil {
		return err
	}
	req, i, err := r.commitRequest(next, false)
	if req == nil || err != nil {
		return err
	}
	r.w.enqueue(req)
	if err := <-req.errc; err != nil {
		return err
	}
	r.trim(i, next)
	return nil
}

// CommitAsync is Commit without the wait, for a writer that commits after
// every answer of SLS: it queues the position and returns at once. The
// position is written by the WAL's indexer after the next group's sync
// (wal/positions.go), and once written it survives a crash of the process
// (badger's transaction is in the page cache); badger's files are synced
// for it with a sync at least indexSyncEvery after the last one that did
// (while the WAL is idle, the next write, Reclaim or Close), and always
// before reclaim trusts it, so a power loss forgets at most the delivery
// since then. It returns the error
// of an earlier CommitAsync that failed (its position is then not
// committed; a later one covers it).
func (r *Reader) CommitAsync(next int64) error {
	err := r.asyncErr()
	req, i, cerr := r.commitRequest(next, true)
	if req == nil || cerr != nil {
		return cmp.Or(err, cerr)
	}
	r.w.enqueue(req)
	r.async = req
	r.trim(i, next)
	return err
}

// asyncErr returns the error of the last CommitAsync if it failed.
func (r *Reader) asyncErr() error {
	if r.async == nil {
		return nil
	}
	select {
	case err := <-r.async.errc:
		r.async = nil
		return err
	default:
		return nil
	}
}

// commitRequest builds the request that commits next and returns the
// index of its entry in r.ends (-1 when next is the last CommitAsync's
// position); no request and no error when next is already committed.
func (r *Reader) commitRequest(next int64, lazy bool) (*request, int, error) {
	if r.closed {
		return nil, 0, ErrClosed
	}
	if !r.Primary() {
		return nil, 0, fmt.Errorf("wal: stream %v: a head reader commits only once the backlog is handed over", r.st.key)
	}
	i := -1
	for j, e := range r.ends {
		if e.pos.Offset == next {
			i = j
			break
		}
	}
	var pos position
	switch {
	case i >= 0:
		pos = r.ends[i].pos
	case r.lazyPos != nil && r.lazyPos.Offset == next:
		if lazy {
			return nil, 0, nil
		}
		pos = *r.lazyPos
	case next == r.Committed():
		return nil, 0, nil
	default:
		return nil, 0, fmt.Errorf("wal: stream %v: Commit(%d) is not the end of an entry returned since the last commit", r.st.key, next)
	}
	return &request{kind: reqCommit, st: r.st, pos: pos, lazy: lazy, errc: make(chan error, 1)}, i, nil
}

// trim forgets the entries up to ends[i] once next is committed (or
// queued, lazily).
func (r *Reader) trim(i int, next int64) {
	r.start = nil
	if i >= 0 {
		if r.async != nil && r.async.pos.Offset == next {
			p := r.ends[i].pos
			r.lazyPos = &p
		} else {
			r.lazyPos = nil
		}
		for j := range r.ends[:i+1] {
			r.frames.put(r.ends[j].frame) // the caller is done with it
		}
		n := copy(r.ends, r.ends[i+1:])
		clear(r.ends[n:])
		r.ends = r.ends[:n]
	} else {
		r.lazyPos = nil
	}
	if r.cursor < next {
		r.cursor = next
	}
}
