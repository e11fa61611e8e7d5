package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Dead letters are entries delivery gave up on (SLS refused them for good).
// They leave their stream, so the stream's reader can commit past them and
// reclaim proceeds, and wait in a table of their own until an operator
// replays them into their stream or drops them (`slsrelay dlq`).
//
// Row ('d' id): version(1)=1 | at(8) | stream key | reason(str) | stored entry.
// The stored entry is the ordinary entry encoding, checksum and credential
// reference included, so its secret stays encrypted here too.

// DeadLetter is one entry in the dead-letter table.
type DeadLetter struct {
	ID     uint64
	Stream StreamKey
	Reason string
	At     time.Time
	// Entry is the entry as it was in its stream: BaseOffset is its old
	// offset, Credential carries the decrypted secret.
	Entry *Entry
}

// DeadLetter moves e (typically just returned by k's Reader) to the
// dead-letter table with a reason, and returns once that is stored (synced
// under SyncBatch). The caller then commits past the entry as usual. Safe
// for concurrent use.
func (w *WAL) DeadLetter(k StreamKey, e *Entry, reason string) (uint64, error) {
	if e == nil || e.Records <= 0 {
		return 0, fmt.Errorf("%w: an entry needs at least one record", ErrInvalidEntry)
	}
	hash, err := w.crypt.hash(e.Credential)
	if err != nil {
		return 0, err
	}
	w.dead.mu.Lock()
	w.dead.nextID++
	id := w.dead.nextID
	w.dead.mu.Unlock()
	at := time.Now()
	err = w.run(func(tw *txnWork) error {
		if err := w.ensureCred(tw, e.Credential, hash); err != nil {
			return err
		}
		row := []byte{1}
		row = binary.BigEndian.AppendUint64(row, uint64(at.UnixNano()))
		row = append(row, encodeStreamKey(k)...)
		row = appendString(row, reason)
		row = append(row, encodeEntry(e, e.BaseOffset, 0, 0, hash)...)
		if err := tw.txn.Set(deadKey(id), row); err != nil {
			return w.diskError("write dead letter", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	w.dead.mu.Lock()
	w.dead.count++
	w.dead.mu.Unlock()
	return id, nil
}

// run executes fn inside a group commit and waits for it like a Commit.
func (w *WAL) run(fn func(tw *txnWork) error) error {
	req := &request{kind: reqFunc, fn: fn, errc: make(chan error, 1)}
	w.enqueue(req)
	return <-req.errc
}

// DeadLetterCount returns how many dead letters are stored. Safe for
// concurrent use.
func (w *WAL) DeadLetterCount() int {
	w.dead.mu.Lock()
	defer w.dead.mu.Unlock()
	return w.dead.count
}

// DeadLetters iterates over the dead-letter table in id order. A row that
// cannot be read yields its id and an error (wrapping ErrCorrupt); the
// iteration goes on. Safe for concurrent use. Rows are read a page at a
// time (deadLettersPerPage), each page a snapshot; a row added or removed
// during the iteration may or may not be seen. The loop body runs with no
// lock held, so it may call the WAL (Replay, Drop); once the WAL is closed
// the iteration ends with ErrClosed.
func (w *WAL) DeadLetters() iter.Seq2[*DeadLetter, error] {
	return func(yield func(*DeadLetter, error) bool) {
		from := []byte{tagDead}
		for {
			page, next, err := w.deadLetterPage(from)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, r := range page {
				if !yield(r.d, r.err) {
					return
				}
			}
			if next == nil {
				return
			}
			from = next
		}
	}
}

// deadLettersPerPage is how many dead letters DeadLetters reads under one
// acquireDB: a dead letter carries its batch, so a page is at most a few
// MiB.
const deadLettersPerPage = 16

type deadLetterRow struct {
	d   *DeadLetter
	err error
}

// deadLetterPage reads up to deadLettersPerPage dead letters from key from on,
// and returns the key to go on from (nil after the last row).
func (w *WAL) deadLetterPage(from []byte) (page []deadLetterRow, next []byte, err error) {
	if !w.acquireDB() {
		return nil, nil, ErrClosed
	}
	defer w.releaseDB()
	txn := w.db.NewTransaction(false)
	defer txn.Discard()
	opt := badger.DefaultIteratorOptions
	opt.Prefix = []byte{tagDead}
	it := txn.NewIterator(opt)
	defer it.Close()
	for it.Seek(from); it.Valid(); it.Next() {
		if len(page) == deadLettersPerPage {
			return page, it.Item().KeyCopy(nil), nil
		}
		d, err := w.decodeDead(txn, it.Item())
		page = append(page, deadLetterRow{d, err})
	}
	return page, nil, nil
}

// DeadLetterByID returns one dead letter, or ErrNotFound.
func (w *WAL) DeadLetterByID(id uint64) (*DeadLetter, error) {
	if !w.acquireDB() {
		return nil, ErrClosed
	}
	defer w.releaseDB()
	var d *DeadLetter
	err := w.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(deadKey(id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("dead letter %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		d, err = w.decodeDead(txn, item)
		return err
	})
	return d, err
}

func (w *WAL) decodeDead(txn *badger.Txn, item *badger.Item) (*DeadLetter, error) {
	k := item.KeyCopy(nil)
	d := &DeadLetter{}
	if len(k) == 9 {
		d.ID = beUint64(k[1:])
	}
	bad := func(what string) (*DeadLetter, error) {
		return d, fmt.Errorf("dead letter %d: %s: %w", d.ID, what, ErrCorrupt)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return bad(err.Error())
	}
	if len(v) < 9 || v[0] != 1 {
		return bad("header")
	}
	d.At = time.Unix(0, int64(binary.BigEndian.Uint64(v[1:])))
	sk, rest, err := decodeStreamKey(v[9:])
	if err != nil {
		return bad("stream")
	}
	d.Stream = sk
	if d.Reason, rest, err = readString(rest); err != nil {
		return bad("reason")
	}
	se, err := decodeEntry(rest)
	if err != nil {
		return d, fmt.Errorf("dead letter %d: %w", d.ID, err)
	}
	secret, err := w.secret(txn, se.Entry.Credential.AccessKeyID, se.CredHash)
	if err != nil {
		return d, fmt.Errorf("dead letter %d: %w", d.ID, err)
	}
	se.Entry.Credential.AccessKeySecret = secret
	d.Entry = &se.Entry
	return d, nil
}

// Replay appends dead letter id back to the end of its stream (a new
// offset, returned) and removes it from the table in the same transaction:
// it is in exactly one of the two whatever happens. Safe for concurrent use.
func (w *WAL) Replay(id uint64) (int64, error) { return w.replayDead(id, nil) }

// ReplayWith is Replay with the entry carrying cred instead of the key it
// was sent with (one SLS refused): delivery signs with cred.
func (w *WAL) ReplayWith(id uint64, cred Credential) (int64, error) { return w.replayDead(id, &cred) }

func (w *WAL) replayDead(id uint64, cred *Credential) (int64, error) {
	if err := w.claimDead(id); err != nil {
		return 0, err
	}
	defer w.releaseDead(id)
	d, err := w.DeadLetterByID(id)
	if err != nil {
		return 0, err
	}
	if cred != nil {
		d.Entry.Credential = *cred
	}
	c := make(chan struct {
		off int64
		err error
	}, 1)
	w.enqueue(&request{kind: reqAppend, key: d.Stream, entry: d.Entry, durable: true, deadID: id,
		done: func(off int64, err error) {
			c <- struct {
				off int64
				err error
			}{off, err}
		}})
	r := <-c
	if r.err != nil {
		return 0, r.err
	}
	w.dead.mu.Lock()
	w.dead.count--
	w.dead.mu.Unlock()
	return r.off, nil
}

// Drop deletes dead letter id for good. Safe for concurrent use.
func (w *WAL) Drop(id uint64) error {
	if err := w.claimDead(id); err != nil {
		return err
	}
	defer w.releaseDead(id)
	if _, err := w.DeadLetterByID(id); err != nil && errors.Is(err, ErrNotFound) {
		return err
	}
	err := w.run(func(tw *txnWork) error {
		if err := tw.txn.Delete(deadKey(id)); err != nil {
			return w.diskError("delete dead letter", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.dead.mu.Lock()
	w.dead.count--
	w.dead.mu.Unlock()
	return nil
}

// claimDead keeps concurrent Replay/Drop calls off the same dead letter, so
// one is not replayed twice or both replayed and dropped.
func (w *WAL) claimDead(id uint64) error {
	w.dead.mu.Lock()
	defer w.dead.mu.Unlock()
	if w.dead.busy == nil {
		w.dead.busy = make(map[uint64]bool)
	}
	if w.dead.busy[id] {
		return fmt.Errorf("wal: dead letter %d is being replayed or dropped", id)
	}
	w.dead.busy[id] = true
	return nil
}

func (w *WAL) releaseDead(id uint64) {
	w.dead.mu.Lock()
	delete(w.dead.busy, id)
	w.dead.mu.Unlock()
}
