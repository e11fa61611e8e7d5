package shardwriter

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// A writer waits while acknowledgements are pending and goes on as soon
// as there are none; with none pending it does not wait at all.
func TestAckYieldWaitsWhilePending(t *testing.T) {
	f := func(name string, release time.Duration) {
		t.Run(name, func(t *testing.T) {
			var pending atomic.Int64
			pending.Store(1)
			if release < 0 {
				pending.Store(0)
			}
			// Past work gives the writer room to wait (floor share).
			y := ackYield{pressure: pending.Load, worked: time.Second}
			if release > 0 {
				time.AfterFunc(release, func() { pending.Store(0) })
			}
			t0 := time.Now()
			y.wait(context.Background())
			waited := time.Since(t0)
			y.done()
			switch {
			case release < 0 && y.waited != 0:
				t.Errorf("waited %v with no acknowledgement pending", y.waited)
			case release > 0 && waited < release:
				t.Errorf("went on after %v, while acknowledgements were pending until %v", waited, release)
			case release > 0 && pending.Load() != 0 && waited < ackYieldMax:
				// (After ackYieldMax it goes on in any case.)
				t.Errorf("went on after %v with acknowledgements still pending", waited)
			}
		})
	}
	f("none pending", -1)
	f("pending for 3 ms", 3*time.Millisecond)
	f("pending for 10 ms", 10*time.Millisecond)
}

// With acknowledgements pending all the time, a writer still works: its
// waits add up to at most (1-floor)/floor of its work (plus one wait's
// overshoot), and it does use that room.
func TestAckYieldKeepsFloorShare(t *testing.T) {
	y := ackYield{pressure: func() int64 { return 1 }}
	var worked, waited time.Duration
	for range 60 {
		t0 := time.Now()
		y.wait(context.Background())
		t1 := time.Now()
		time.Sleep(time.Millisecond) // the unit of work
		y.done()
		worked += time.Since(t1)
		waited += t1.Sub(t0)
	}
	most := time.Duration(float64(worked)*(1-ackYieldFloor)/ackYieldFloor) + ackYieldMax
	if waited > most {
		t.Errorf("waited %v for %v of work: more than the floor share allows (%v)", waited, worked, most)
	}
	if least := worked / 4; waited < least {
		t.Errorf("waited %v for %v of work under constant pressure, want at least %v", waited, worked, least)
	}
}

// A stop ends a wait at once.
func TestAckYieldEndsWithContext(t *testing.T) {
	y := ackYield{pressure: func() int64 { return 1 }, worked: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t0 := time.Now()
	y.wait(ctx)
	if d := time.Since(t0); d >= ackYieldMax {
		t.Errorf("a cancelled wait took %v", d)
	}
}

// A writer whose process always has acknowledgements pending still
// delivers everything (the floor share), waiting for them as it goes; once
// none are pending it delivers without waiting.
func TestWriterYieldsToAcks(t *testing.T) {
	var pending atomic.Int64
	pending.Store(1)
	var looked atomic.Int64
	e := wtStart(t, func(o *Options) {
		o.ReadBytes = 1 // an entry per read: many units of work
		o.AckPressure = func() int64 { looked.Add(1); return pending.Load() }
	})
	waits := ackYieldWaits.Get()
	for i := range 40 {
		e.append(wtRecords(fmt.Sprint("p", i), 50))
	}
	e.svc.Start()
	e.waitFor("2,000 logs delivered under constant ack pressure", func() bool { return len(e.stored()) == 2000 })
	if ackYieldWaits.Get() == waits {
		t.Fatalf("the writer never waited for acknowledgements (looked %d times)", looked.Load())
	}
	pending.Store(0)
	waits = ackYieldWaits.Get()
	for i := range 10 {
		e.append(wtRecords(fmt.Sprint("q", i), 50))
	}
	e.waitFor("500 more logs delivered", func() bool { return len(e.stored()) == 2500 })
	if n := ackYieldWaits.Get() - waits; n != 0 {
		t.Errorf("the writer waited %d times with no acknowledgement pending", n)
	}
}
