package wal

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A head reader split off a reader that is behind reads from the end of
// what was readable at the split, also entries appended later; it cannot
// commit until the reader read the backlog up to that point (then
// ErrHeadReached), committed there and handed over; then it commits, and
// its position is there after a restart.
func TestSplitHeadAndHandOver(t *testing.T) {
	dir, o, k := mkdir(t), testOptions(t), sk(1)
	w, r := tenEntries(t, dir, o, k)
	es, err := r.Read(context.Background(), 1<<20, 3)
	if err != nil || len(es) != 3 {
		t.Fatalf("read %d entries: %v", len(es), err)
	}
	head, from, err := r.SplitHead()
	if err != nil || from != 20 {
		t.Fatalf("SplitHead: from %d, %v; want 20", from, err)
	}
	if _, _, err := r.SplitHead(); err == nil {
		t.Fatal("a second SplitHead succeeded")
	}
	mustAppend(t, w, k, testEntry(10, 100, 2), true)
	mustAppend(t, w, k, testEntry(11, 100, 2), true)
	hs := readAll(t, head)
	if len(hs) != 2 || hs[0].BaseOffset != 20 {
		t.Fatalf("the head reader read %d entries from %d, want 2 from 20", len(hs), hs[0].BaseOffset)
	}
	if err := head.CommitAsync(22); err == nil {
		t.Fatal("the head reader committed before the hand-over")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rest, err := r.Read(ctx, 1<<20, 100)
	if err != nil || len(rest) != 7 || rest[6].BaseOffset != 18 {
		t.Fatalf("the reader read %d more entries (%v), want 7 up to offset 18", len(rest), err)
	}
	if _, err := r.Read(ctx, 1<<20, 10); !errors.Is(err, ErrHeadReached) {
		t.Fatalf("Read at the head's start: %v, want ErrHeadReached", err)
	}
	if err := r.HandOver(head); err == nil {
		t.Fatal("HandOver before the backlog was committed succeeded")
	}
	if err := r.Commit(from); err != nil {
		t.Fatal(err)
	}
	if err := r.HandOver(head); err != nil {
		t.Fatal(err)
	}
	if err := head.Commit(24); err != nil {
		t.Fatal(err)
	}
	reopenAt(t, w, dir, o, k, 24)
}
