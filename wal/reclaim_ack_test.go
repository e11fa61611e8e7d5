package wal

import (
	"testing"
	"time"
)

// While Reclaim's DropPrefix holds dbWriteMu (30–110 ms in burst runs;
// here the test holds it), the indexer waits to write the index rows of
// every sync that finishes meanwhile. Appends to a known stream need no
// badger write of their own, so they must still be answered: the syncer
// must not wait for the indexer.
func TestAppendsAnsweredWhileIndexWaitsForDrop(t *testing.T) {
	w := openTest(t, mkdir(t), testOptions(t))
	defer w.Close()
	mustAppend(t, w, sk(0), testEntry(0, 1<<10, 1), true) // the stream and its credential exist
	waitIndexed(t, w)
	w.dbWriteMu.Lock()
	locked := true
	defer func() {
		if locked {
			w.dbWriteMu.Unlock()
		}
	}()
	for i := range 100 { // one sync each: more than the syncer→indexer queue holds
		acked := make(chan error, 1)
		w.Append(sk(0), testEntry(uint64(1+i), 1<<10, 1), true, func(_ int64, err error) { acked <- err })
		select {
		case err := <-acked:
			if err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			w.dbWriteMu.Unlock()
			locked = false
			t.Fatalf("append %d not answered while the index waits for a DropPrefix", i)
		}
	}
	w.dbWriteMu.Unlock()
	locked = false
	waitIndexed(t, w)
	rd, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	if es := readAll(t, rd); len(es) != 101 {
		t.Fatalf("read %d entries, want 101", len(es))
	}
}
