package engine

import (
	"context"
	"sync"
	"time"
)

// lazyDeadline is a context with a deadline whose timer is made only when
// someone waits on it (Done or Err). Every Produce bounds its catalog calls
// by catalogTimeout, and context.WithTimeout arms a runtime timer per
// request and stops it again, though the catalog answers from memory
// almost always (shardwriter.Catalog.Partitions does not look at the
// context; StaticCatalog never blocks). Not safe to copy; safe for
// concurrent use once made.
type lazyDeadline struct {
	deadline time.Time
	once     sync.Once
	ctx      context.Context
	cancel   context.CancelFunc // nil when stop came first
}

// stoppedContext is what a lazyDeadline stopped before anyone waited on it
// reads as: cancelled.
var stoppedContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func newLazyDeadline(d time.Time) *lazyDeadline { return &lazyDeadline{deadline: d} }

// real is the context.WithDeadline this stands for, made on first use.
func (l *lazyDeadline) real() context.Context {
	l.once.Do(func() {
		l.ctx, l.cancel = context.WithDeadline(context.Background(), l.deadline)
	})
	return l.ctx
}

func (l *lazyDeadline) Deadline() (time.Time, bool) { return l.deadline, true }
func (l *lazyDeadline) Done() <-chan struct{}       { return l.real().Done() }
func (l *lazyDeadline) Err() error                  { return l.real().Err() }
func (l *lazyDeadline) Value(any) any               { return nil }

// stop cancels the context, as a CancelFunc does, releasing the timer if
// one was made; without one nothing is made.
func (l *lazyDeadline) stop() {
	l.once.Do(func() { l.ctx = stoppedContext })
	if l.cancel != nil {
		l.cancel()
	}
}
