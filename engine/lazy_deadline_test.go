package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLazyDeadline: the context Produce hands the catalog behaves as
// context.WithDeadline's, whether it is waited on before, after or never
// before it is stopped.
func TestLazyDeadline(t *testing.T) {
	f := func(name string, use func(l *lazyDeadline) error, want error) {
		t.Helper()
		if got := use(newLazyDeadline(time.Now().Add(20 * time.Millisecond))); !errors.Is(got, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	f("running", func(l *lazyDeadline) error { defer l.stop(); return l.Err() }, nil)
	f("past its deadline", func(l *lazyDeadline) error { defer l.stop(); return waitDone(l) }, context.DeadlineExceeded)
	f("stopped before any wait", func(l *lazyDeadline) error { l.stop(); return waitDone(l) }, context.Canceled)
	f("stopped while waited on", func(l *lazyDeadline) error { _ = l.Done(); l.stop(); return waitDone(l) }, context.Canceled)
	f("a child sees the parent stop", func(l *lazyDeadline) error {
		child, cancel := context.WithCancel(l)
		defer cancel()
		l.stop()
		return waitDone(child)
	}, context.Canceled)

	d := time.Now().Add(time.Hour)
	if got, ok := newLazyDeadline(d).Deadline(); !ok || !got.Equal(d) {
		t.Errorf("Deadline() = %v, %v; want %v, true", got, ok, d)
	}
}

// waitDone waits for ctx to end (at most 5 s) and returns its Err.
func waitDone(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
		return errors.New("Done not closed within 5 s")
	}
}
