package wal

import (
	"errors"
	"testing"
	"time"
)

// deadLetters stores n dead letters in stream k and returns their ids.
func deadLetters(t *testing.T, w *WAL, k StreamKey, n int) []uint64 {
	t.Helper()
	var ids []uint64
	for i := range n {
		e := testEntry(uint64(i), 300, 1)
		mustAppend(t, w, k, e, false)
		id, err := w.DeadLetter(k, e, "SLS: InvalidLogSize")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// inTime runs fn and fails the test if it has not returned after a while:
// a loop body that waits for a lock its iterator holds never returns.
func inTime(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("deadlock: the loop body waits for a lock held around it")
	}
}

// TestDeadLettersLoopCallsWAL: the body of a DeadLetters loop runs with no
// lock held, so it may drop what it lists, and the table is listed in id
// order across several pages.
func TestDeadLettersLoopCallsWAL(t *testing.T) {
	w := openTest(t, mkdir(t), testOptions(t))
	defer w.Close()
	k := sk(1)
	want := deadLetters(t, w, k, 2*deadLettersPerPage+3)
	var got []uint64
	inTime(t, func() {
		for d, err := range w.DeadLetters() {
			if err != nil {
				t.Error(err)
				return
			}
			got = append(got, d.ID)
			if err := w.Drop(d.ID); err != nil {
				t.Errorf("Drop(%d) inside the loop: %v", d.ID, err)
			}
		}
	})
	if len(got) != len(want) {
		t.Fatalf("listed %d dead letters, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("listed %v, want %v", got, want)
		}
	}
	if n := w.DeadLetterCount(); n != 0 {
		t.Fatalf("%d dead letters left after dropping all", n)
	}
}

// TestDeadLettersCloseInLoop: Close inside the loop body returns (the
// iterator does not hold the database open across the body), and the
// iteration then ends with ErrClosed once the page read before is done.
func TestDeadLettersCloseInLoop(t *testing.T) {
	w := openTest(t, mkdir(t), testOptions(t))
	deadLetters(t, w, sk(2), deadLettersPerPage+2)
	rows, closedErrs := 0, 0
	inTime(t, func() {
		for d, err := range w.DeadLetters() {
			if errors.Is(err, ErrClosed) {
				closedErrs++
				continue
			}
			if err != nil || d == nil {
				t.Errorf("row %d: %v", rows, err)
				return
			}
			rows++
			if rows == 1 {
				w.Close()
			}
		}
	})
	if rows != deadLettersPerPage || closedErrs != 1 {
		t.Fatalf("%d rows and %d ErrClosed after Close in the first row; want the first page (%d rows) and one ErrClosed",
			rows, closedErrs, deadLettersPerPage)
	}
}
