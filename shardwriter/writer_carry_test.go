package shardwriter

import (
	"fmt"
	"testing"
	"time"
)

// A read's last LogGroup that is not full is carried over and filled by
// the next reads instead of being sent alone: eight entries of 4 records,
// read one at a time (ReadBytes 1), go out as two LogGroups of 16 logs; a
// group that does not fill up goes out Linger after its first log.
func TestWriterCarriesPartialGroupOver(t *testing.T) {
	e := wtStart(t, func(o *Options) {
		o.LogGroup.MaxLogs, o.ReadBytes, o.Linger = 16, 1, 300*time.Millisecond
	})
	for i := range 8 {
		e.append(wtRecords(fmt.Sprint("e", i), 4))
	}
	e.svc.Start()
	e.waitFor("32 logs delivered", func() bool { return len(e.stored()) == 32 })
	if n := e.hook.puts.Load(); n != 2 {
		t.Fatalf("32 logs went out in %d PutLogs, want 2 of 16", n)
	}
	start := time.Now()
	e.append(wtRecords("late", 4))
	e.waitFor("the 4 late logs delivered", func() bool { return len(e.stored()) == 36 })
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("a LogGroup of 4 logs went out after %v, before Linger (300 ms)", waited)
	}
	if n := e.hook.puts.Load(); n != 3 {
		t.Fatalf("%d PutLogs, want 3", n)
	}
}
