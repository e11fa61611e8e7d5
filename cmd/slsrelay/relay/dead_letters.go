package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
}

// DeadLetterSelection names dead letters: ids, inclusive id ranges, or
// all of them.
type DeadLetterSelection struct {
	IDs    []uint64  `json:"ids,omitempty"`
	Ranges []IDRange `json:"ranges,omitempty"`
	All    bool      `json:"all,omitempty"`
}

// IDRange is the dead letters From to To, both included.
type IDRange struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// ParseDeadLetterSelection reads the command line's dead letters: each arg
// an id ("7") or a range ("7-12"); all for -all.
func ParseDeadLetterSelection(args []string, all bool) (DeadLetterSelection, error) {
	sel := DeadLetterSelection{All: all}
	for _, a := range args {
		from, to, isRange := strings.Cut(a, "-")
		f, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			return sel, fmt.Errorf("dead letter id %q is not a number (nor a range FROM-TO)", a)
		}
		if !isRange {
			sel.IDs = append(sel.IDs, f)
			continue
		}
		t, err := strconv.ParseUint(to, 10, 64)
		if err != nil || t < f {
			return sel, fmt.Errorf("dead letter range %q is not FROM-TO with FROM <= TO", a)
		}
		sel.Ranges = append(sel.Ranges, IDRange{f, t})
	}
	return sel, nil
}

// Empty tells whether sel names nothing.
func (s DeadLetterSelection) Empty() bool { return !s.All && len(s.IDs) == 0 && len(s.Ranges) == 0 }

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
			Records: int(l.Entry.Records), At: l.At, Reason: l.Reason})
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

// resolve turns sel into ids: with All every dead letter; else the ids as
// given (one that does not exist fails when acted on), then those of the
// ranges that exist, each id once.
func (d WALDeadLetters) resolve(ctx context.Context, sel DeadLetterSelection) ([]uint64, error) {
	if sel.Empty() {
		return nil, errors.New("no dead letters selected")
	}
	ids := slices.Clone(sel.IDs)
	if !sel.All && len(sel.Ranges) == 0 {
		return ids, nil
	}
	if sel.All {
		ids = nil
	}
	listed, err := d.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range listed {
		in := sel.All
		for _, r := range sel.Ranges {
			in = in || r.From <= l.ID && l.ID <= r.To
		}
		if in && !slices.Contains(ids, l.ID) {
			ids = append(ids, l.ID)
		}
	}
	return ids, nil
}
