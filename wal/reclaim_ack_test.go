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
	t.Cleanup(func() { w.Close() })                       // after the drop's cleanup
	mustAppend(t, w, sk(0), testEntry(0, 1<<10, 1), true) // the stream and its credential exist
	waitIndexed(t, w)
	d := startDrop(t, w)
	for i := range 100 { // one sync each: more than the syncer→indexer queue holds
		if !d.appendAnswered(uint64(1+i), 5*time.Second) {
			t.Fatalf("append %d not answered while the index waits for a DropPrefix", i)
		}
	}
	d.end()
	waitIndexed(t, w)
	rd, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	if es := readAll(t, rd); len(es) != 101 {
		t.Fatalf("read %d entries, want 101", len(es))
	}
}
