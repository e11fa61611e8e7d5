package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// The dead-letter operations of `slsrelay dlq`, one implementation for
// both ways the command reaches the WAL: WALDeadLetters acts on a WAL this
// process opened (the relay is stopped), and the running relay serves the
// same calls on its control socket (control.go) to ControlClient. A replay
// is wal.Replay either way: the entry is appended to its stream through
// the WAL's group commit, as a producer's batch is, and the stream's
// writer — the stream's one reader — delivers it in its turn.

// DeadLetterAdmin lists, replays and drops dead letters. Safe for
// concurrent use: the WAL keeps two calls off the same dead letter.
type DeadLetterAdmin interface {
	// DeadLetters lists every dead letter in id order.
	DeadLetters(ctx context.Context) ([]DeadLetterInfo, error)
	// Replay puts the selected dead letters back into their streams, in
	// order, calling done after each; with key they carry that AccessKey
	// instead of theirs. It stops at the first error.
	Replay(ctx context.Context, sel DeadLetterSelection, key *wal.Credential, done func(id uint64, offset int64)) error
	// Drop deletes the selected dead letters for good, in order, calling
	// done after each. It stops at the first error.
	Drop(ctx context.Context, sel DeadLetterSelection, done func(id uint64)) error
}

// DeadLetterInfo is one row of `slsrelay dlq list`: no record data, no
// credential.
type DeadLetterInfo struct {
	ID        uint64    `json:"id"`
	Project   string    `json:"project"`
	Logstore  string    `json:"logstore"`
	Partition int32     `json:"partition"`
	Records   int       `json:"records"`
	At        time.Time `json:"at"`
	Reason    string    `json:"reason"`
	// AccessKeyID is the key the entry was sent with (never its secret).
	AccessKeyID string `json:"access_key_id"`
}

// WALDeadLetters is DeadLetterAdmin on a WAL: the one this process opened
// while the relay is stopped, or the running relay's own for its control
// socket.
type WALDeadLetters struct{ WAL *wal.WAL }

func (d WALDeadLetters) DeadLetters(ctx context.Context) ([]DeadLetterInfo, error) {
	var out []DeadLetterInfo
	for l, err := range d.WAL.DeadLetters() {
		if err != nil {
			return out, err
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		out = append(out, DeadLetterInfo{ID: l.ID, Project: l.Stream.Project, Logstore: l.Stream.Logstore, Partition: l.Stream.Partition,
			Records: int(l.Entry.Records), At: l.At, Reason: l.Reason, AccessKeyID: l.Entry.Credential.AccessKeyID})
	}
	return out, nil
}

func (d WALDeadLetters) Replay(ctx context.Context, sel DeadLetterSelection, key *wal.Credential, done func(id uint64, offset int64)) error {
	return d.each(ctx, sel, func(id uint64) error {
		var off int64
		var err error
		if key != nil {
			off, err = d.WAL.ReplayWith(id, *key)
		} else {
			off, err = d.WAL.Replay(id)
		}
		if err != nil {
			return fmt.Errorf("cannot replay dead letter %d: %w", id, err)
		}
		done(id, off)
		return nil
	})
}

func (d WALDeadLetters) Drop(ctx context.Context, sel DeadLetterSelection, done func(id uint64)) error {
	return d.each(ctx, sel, func(id uint64) error {
		if err := d.WAL.Drop(id); err != nil {
			return fmt.Errorf("cannot drop dead letter %d: %w", id, err)
		}
		done(id)
		return nil
	})
}

// each calls act on the dead letters sel names, in order, until one
// fails or ctx ends.
func (d WALDeadLetters) each(ctx context.Context, sel DeadLetterSelection, act func(id uint64) error) error {
	ids, err := d.resolve(ctx, sel)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := act(id); err != nil {
			return err
		}
	}
	return nil
}

// resolve turns sel into ids: the ids as given when sel is only ids (one
// that does not exist fails when acted on); else, in id order, every dead
// letter sel matches, and an id given that does not exist is an error.
func (d WALDeadLetters) resolve(ctx context.Context, sel DeadLetterSelection) ([]uint64, error) {
	if sel.Empty() {
		return nil, errors.New("no dead letters selected")
	}
	if err := sel.Check(); err != nil {
		return nil, err
	}
	if sel.onlyIDs() {
		return slices.Clone(sel.IDs), nil
	}
	listed, err := d.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, l := range listed {
		if sel.Matches(l) {
			ids = append(ids, l.ID)
		}
	}
	for _, id := range sel.IDs {
		if !slices.ContainsFunc(listed, func(l DeadLetterInfo) bool { return l.ID == id }) {
			return nil, fmt.Errorf("dead letter %d: %w", id, wal.ErrNotFound)
		}
	}
	return ids, nil
}
