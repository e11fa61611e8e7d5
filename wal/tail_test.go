package wal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestTail: the last n entries of a stream, oldest first, each with the
// first bytes of its data, also after a restart; a long client id (past
// the first read) still works; unknown streams are ErrNotFound.
func TestTail(t *testing.T) {
	dir := mkdir(t)
	o := testOptions(t)
	w := openTest(t, dir, o)
	for i := range 10 {
		e := testEntry(uint64(i), 2000, 2)
		if i == 9 {
			e.ClientID = strings.Repeat("c", 3000)
		}
		e.JSON = i == 8
		mustAppend(t, w, sk(0), e, false)
	}
	mustAppend(t, w, sk(1), testEntry(100, 10, 1), false)
	waitIndexed(t, w)
	check := func(w *WAL) {
		t.Helper()
		heads, err := w.Tail(sk(0), 4, 16)
		if err != nil {
			t.Fatal(err)
		}
		if len(heads) != 4 {
			t.Fatalf("%d heads, want 4", len(heads))
		}
		for i, h := range heads {
			id := uint64(6 + i)
			if h.BaseOffset != int64(2*id) || h.Records != 2 || h.Magic != 2 || h.JSON != (id == 8) || !bytes.Equal(h.Head, payload(id, 2000)[:16]) {
				t.Fatalf("head %d: %+v", i, h)
			}
		}
		// Data shorter than headBytes comes whole.
		if heads, err := w.Tail(sk(1), 5, 64); err != nil || len(heads) != 1 || len(heads[0].Head) != 16 {
			t.Fatalf("short entry: %+v, %v", heads, err)
		}
	}
	check(w)
	w.Close()
	w = openTest(t, dir, o)
	defer w.Close()
	check(w)
	if _, err := w.Tail(sk(2), 1, 16); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown stream: %v", err)
	}
}

// TestTailAfterReclaim: once delivered entries' files are deleted, Tail
// returns what it can read and stops, without error.
func TestTailAfterReclaim(t *testing.T) {
	o := testOptions(t)
	o.DataFileBytes = 64 << 10 // a file every few entries
	w := openTest(t, mkdir(t), o)
	defer w.Close()
	for i := range 40 {
		mustAppend(t, w, sk(0), testEntry(uint64(i), 20000, 1), false)
	}
	consumeAll(t, w)
	if _, err := w.Reclaim(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, w, sk(0), testEntry(40, 100, 1), false)
	waitIndexed(t, w)
	heads, err := w.Tail(sk(0), 10, 16)
	if err != nil || len(heads) == 0 || heads[len(heads)-1].BaseOffset != 40 {
		t.Fatalf("tail after reclaim: %+v, %v", heads, err)
	}
	t.Logf("%d entries readable after reclaim", len(heads))
}
