package shardwriter

import (
	"testing"
	"time"
)

// The writer commits after every answer, not after the whole read: while
// the fourth LogGroup of one read is in flight (one at a time here), the
// stream's committed position is past the three answered (each entry one
// LogGroup), so a crash then would send only the fourth again.
func TestWriterCommitsAfterEachLogGroup(t *testing.T) {
	e := wtStart(t, func(o *Options) { o.LogGroup.MaxLogs, o.RequestsInFlight = 16, 1 })
	e.hook.holdAfter.Store(3)
	for i := range 5 {
		e.append(wtRecords(string(rune('a'+i)), 16))
	}
	e.svc.Start()
	committed := func() int64 {
		st := e.w.Stats()
		if len(st.Streams) != 1 {
			return -1
		}
		return st.Streams[0].Committed
	}
	e.waitFor("4 PutLogs, the 4th held", func() bool { return e.hook.puts.Load() >= 4 })
	e.waitFor("position 48 committed while the 4th LogGroup is held", func() bool { return committed() == 48 })
	time.Sleep(50 * time.Millisecond)
	if got := committed(); got != 48 {
		t.Fatalf("committed %d with the 4th LogGroup in flight, want 48", got)
	}
	close(e.hook.release)
	e.waitFor("all 80 logs delivered and committed", func() bool { return len(e.stored()) == 80 && committed() == 80 })
}
