package wal

import (
	"context"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// appendBulk writes total bytes of size-byte entries over streams, with many
// appends in flight, and returns the acknowledged offsets count.
func appendBulk(t testing.TB, w *WAL, streams, size int, total int64) int {
	t.Helper()
	n := int(total / int64(size))
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	data := payload(1, size) // same bytes each time: writing, not generating, is timed
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		e := testEntry(0, 16, 1)
		e.Data = data
		w.Append(sk(i%streams), e, false, func(_ int64, err error) {
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
			<-sem
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("append: %v", firstErr)
	}
	return n
}

// consumeAll reads every stream to its end, committing after each batch.
func consumeAll(t testing.TB, w *WAL) int {
	t.Helper()
	n := 0
	for _, k := range w.Streams() {
		r, err := w.Reader(k)
		if err != nil {
			t.Fatal(err)
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			es, err := r.Read(ctx, 8<<20, 1000)
			cancel()
			if err == context.DeadlineExceeded {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n += len(es)
			last := es[len(es)-1]
			if err := r.Commit(last.BaseOffset + int64(last.Records)); err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
	}
	return n
}

func TestReclaim(t *testing.T) {
	total := int64(1 << 30)
	if testing.Short() || raceEnabled {
		total = 128 << 20
	}
	const size = 64 << 10
	dir := mkdir(t)
	o := testOptions(t)
	w := openTest(t, dir, o)

	start := time.Now()
	n := appendBulk(t, w, 4, size, total)
	wrote := time.Since(start)
	full := w.rescanned()
	// Reopening with the whole backlog reads metadata only.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	w = openTest(t, dir, o)
	defer w.Close()
	t.Logf("reopened with %d MiB of backlog in %v", full>>20, time.Since(t1).Round(time.Millisecond))
	if st := w.Stats(); st.PendingEntries != int64(n) {
		t.Fatalf("after reopen %d entries pending, want %d", st.PendingEntries, n)
	}
	t0 := time.Now()
	if got := consumeAll(t, w); got != n {
		t.Fatalf("consumed %d of %d", got, n)
	}
	read := time.Since(t0)
	st := w.Stats()
	if st.PendingEntries != 0 || st.PendingBytes != 0 {
		t.Fatalf("pending after consuming: %+v", st)
	}
	res, err := w.Reclaim()
	if err != nil {
		t.Fatal(err)
	}
	after := w.rescanned()
	t.Logf("wrote %d MiB in %v (%.0f MB/s), dir %d MiB; read+commit %v; reclaim: %d segments, %d vlog GCs, %v; dir %d MiB -> %d KiB (%.2f%% of written); total %v",
		total>>20, wrote.Round(time.Millisecond), float64(total)/wrote.Seconds()/1e6, full>>20,
		read.Round(time.Millisecond), res.Segments, res.GCRewrites, res.Took.Round(time.Millisecond),
		res.Before>>20, after>>10, 100*float64(after)/float64(total), time.Since(start).Round(time.Millisecond))
	if after > total/10 {
		t.Fatalf("after reclaim the directory holds %d bytes, more than 10%% of the %d written", after, total)
	}
	// The WAL keeps working, offsets continue.
	off := mustAppend(t, w, sk(0), testEntry(5, 100, 1), false)
	if want := int64(n / 4); off < want {
		t.Fatalf("offset after reclaim %d, want >= %d", off, want)
	}
	r, _ := w.Reader(sk(0))
	if es := readAll(t, r); len(es) != 1 || es[0].BaseOffset != off {
		t.Fatalf("read after reclaim: %d entries", len(es))
	}
}

// TestReclaimActiveDataFile: once everything is delivered, the data file
// being written goes too (appends start a new one), and file numbers keep
// growing across restarts even when no file is left: recovery replays the
// files from the checkpoint's number on.
func TestReclaimActiveDataFile(t *testing.T) {
	dir := mkdir(t)
	o := testOptions(t)
	w := openTest(t, dir, o)
	for i := range 10 {
		mustAppend(t, w, sk(i%2), testEntry(uint64(i), 4<<10, 1), false)
	}
	if got := consumeAll(t, w); got != 10 {
		t.Fatalf("consumed %d", got)
	}
	before := dataFileNums(t, dir)
	res, err := w.Reclaim()
	if err != nil {
		t.Fatal(err)
	}
	if res.DataFiles != len(before) || len(dataFileNums(t, dir)) != 0 {
		t.Fatalf("reclaim deleted %d of data files %v; left %v", res.DataFiles, before, dataFileNums(t, dir))
	}
	if off := mustAppend(t, w, sk(0), testEntry(100, 100, 1), false); off != 5 {
		t.Fatalf("append after reclaim at offset %d, want 5", off)
	}
	after := dataFileNums(t, dir)
	if len(after) != 1 || after[0] <= before[len(before)-1] {
		t.Fatalf("data files before %v, after %v: numbers must grow", before, after)
	}
	// Deliver that one too and restart with no data file at all.
	if got := consumeAll(t, w); got != 1 {
		t.Fatalf("consumed %d", got)
	}
	if _, err := w.Reclaim(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = openTest(t, dir, o)
	defer w.Close()
	if off := mustAppend(t, w, sk(0), testEntry(101, 100, 1), false); off != 6 {
		t.Fatalf("append after restart at offset %d, want 6", off)
	}
	if now := dataFileNums(t, dir); len(now) == 0 || now[0] <= after[0] {
		t.Fatalf("data files after restart %v, before %v: numbers must grow", now, after)
	}
}

func dataFileNums(t *testing.T, dir string) []uint64 {
	t.Helper()
	d, err := openDataFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, n := range d.nums() {
		if fi, err := os.Stat(dataFilePath(d.dir, n)); err == nil && fi.Size() > 0 {
			out = append(out, n)
		}
	}
	return out
}

// TestLostFileEndsAreRebuilt: a crash can keep the index rows and stream
// metadata of some frames and lose their file's end rows and checkpoint.
// Recovery, reading those frames again, must give the file its ends back,
// or Reclaim would delete it under a stream that has not delivered them.
func TestLostFileEndsAreRebuilt(t *testing.T) {
	dir := mkdir(t)
	o := testOptions(t)
	w := openTest(t, dir, o)
	for i := range 6 {
		mustAppend(t, w, sk(i%2), testEntry(uint64(i), 2000, 1), false)
	}
	w.Close()
	withDB(t, dir, func(txn *badger.Txn) error {
		for _, num := range dataFileNums(t, dir) {
			for sid := uint32(1); sid <= 2; sid++ {
				if err := txn.Delete(fileEndKey(num, sid)); err != nil {
					return err
				}
			}
		}
		return txn.Set(checkpointKey, dataPos{file: 1, pos: 0}.encode())
	})
	w = openTest(t, dir, o)
	defer w.Close()
	r, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	es := readAll(t, r)
	if len(es) != 3 {
		t.Fatalf("stream 0: %d entries", len(es))
	}
	if err := r.Commit(es[2].BaseOffset + 1); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := w.Reclaim(); err != nil {
		t.Fatal(err)
	}
	if o := readThrough(t, w, sk(1)); len(o.ids) != 3 || len(o.corrupt) != 0 {
		t.Fatalf("stream 1 after reclaim: %+v", o)
	}
}

// TestUnknownStreamKeepsItsID: frames whose stream row a crash lost are
// not indexed, and their stream id is never given to a new stream: a later
// recovery reading them again would index them into it.
func TestUnknownStreamKeepsItsID(t *testing.T) {
	dir := mkdir(t)
	o := testOptions(t)
	w := openTest(t, dir, o)
	mustAppend(t, w, sk(0), testEntry(0, 500, 1), false) // stream id 1
	mustAppend(t, w, sk(1), testEntry(1, 500, 1), false) // stream id 2
	w.Close()
	lose := func(txn *badger.Txn, sid uint32) error {
		// The stream's rows and the index are lost; the frames remain.
		for _, k := range [][]byte{sidKey(tagStream, sid), sidKey(tagMeta, sid), entryKey(sid, 0, 0), segmentKey(sid, 0)} {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return txn.Set(checkpointKey, dataPos{file: 1, pos: 0}.encode())
	}
	withDB(t, dir, func(txn *badger.Txn) error { return lose(txn, 2) })
	w = openTest(t, dir, o)
	if got := w.Streams(); len(got) != 1 {
		t.Fatalf("streams after recovery: %v", got)
	}
	mustAppend(t, w, sk(2), testEntry(2, 500, 1), false) // a new stream: not id 2
	w.Close()
	// A power loss that keeps the new stream's row (synced before its
	// ack) and loses its index and metadata (never synced).
	withDB(t, dir, func(txn *badger.Txn) error {
		for _, sid := range []uint32{2, 3} {
			for _, k := range [][]byte{sidKey(tagMeta, sid), entryKey(sid, 0, 0), segmentKey(sid, 0)} {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
		}
		return txn.Set(checkpointKey, dataPos{file: 1, pos: 0}.encode())
	})
	w = openTest(t, dir, o)
	defer w.Close()
	if got := readThrough(t, w, sk(2)); len(got.ids) != 1 || got.ids[0] != 2 {
		t.Fatalf("new stream reads %+v, want only its own entry", got)
	}
}

// Appends are answered while Reclaim deletes files and drops segments:
// only the plan is made between two groups. Before, the committer did the
// whole drop — 30 to 110 ms of unlink and DropPrefix in burst runs — and
// every append waited for it.
func TestAppendsGoOnWhileReclaimDrops(t *testing.T) {
	dir := mkdir(t)
	w := openTest(t, dir, testOptions(t))
	defer w.Close()
	for i := range 10 {
		mustAppend(t, w, sk(i%2), testEntry(uint64(i), 4<<10, 1), false)
	}
	if got := consumeAll(t, w); got != 10 {
		t.Fatalf("consumed %d", got)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	injectFaults(w, &faultHooks{reclaimStep: func(step string) {
		if step != stepPlanned {
			return
		}
		close(entered)
		<-release
	}})
	type result struct {
		res ReclaimResult
		err error
	}
	reclaimed := make(chan result, 1)
	go func() {
		res, err := w.Reclaim()
		reclaimed <- result{res, err}
	}()
	<-entered
	acked := make(chan error, 1)
	w.Append(sk(0), testEntry(100, 4<<10, 1), true, func(_ int64, err error) { acked <- err })
	select {
	case err := <-acked:
		if err != nil {
			t.Fatalf("append during reclaim: %v", err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a synced append waited for Reclaim's drop")
	}
	close(release)
	r := <-reclaimed
	if r.err != nil || r.res.DataFiles == 0 || r.res.Segments == 0 {
		t.Fatalf("reclaim: %+v, %v", r.res, r.err)
	}
	rd, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	if es := readAll(t, rd); len(es) != 1 || es[0].BaseOffset != 5 {
		t.Fatalf("after reclaim the new append reads as %d entries", len(es))
	}
}

// Reclaim's DropPrefix, now outside the committer, makes badger refuse
// writes while it runs: the committer's rows (new streams, positions) and
// the indexer's must wait for it rather than fail. Appends to new and old
// streams, readers committing, and Reclaim, all at once: every append is
// answered without error, every entry is read once, and the WAL saw no
// disk error.
func TestReclaimUnderWrites(t *testing.T) {
	dir := mkdir(t)
	o := testOptions(t)
	o.SegmentBytes, o.DataFileBytes = 32<<10, 128<<10
	w := openTest(t, dir, o)
	defer w.Close()
	seq0 := w.diskSeq()
	var mu sync.Mutex             // protects ends and appendErr
	ends := map[StreamKey]int64{} // each stream's end, from the appends' answers
	var appendErr error
	endsNow := func() map[StreamKey]int64 {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(ends)
	}
	stop := make(chan struct{})
	var appended sync.WaitGroup
	appended.Add(1)
	go func() {
		defer appended.Done()
		sem := make(chan struct{}, 16)
		for i := 0; ; i++ {
			select {
			case <-stop:
				for range cap(sem) {
					sem <- struct{}{}
				}
				return
			case sem <- struct{}{}:
			}
			// Now and then a new stream, whose rows the committer writes.
			k := sk(i % 3)
			if i%50 == 0 {
				k = sk(100 + i/50)
			}
			w.Append(k, testEntry(uint64(i), 4<<10, 1), true, func(off int64, err error) {
				mu.Lock()
				if err != nil {
					appendErr = err
				} else {
					ends[k] = max(ends[k], off+1)
				}
				mu.Unlock()
				<-sem
			})
		}
	}()
	var segments, files int
	// At least 30 rounds, and on until Reclaim has dropped both: on a
	// loaded machine the appender may not have run during the first 30
	// (3 runs in 100 dropped nothing in 30 rounds, one of them done in
	// 20 ms).
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 30 || (segments == 0 || files == 0) && time.Now().Before(deadline); i++ {
		res, err := w.Reclaim()
		if err != nil {
			t.Fatalf("reclaim: %v", err)
		}
		segments += res.Segments
		files += res.DataFiles
		consumeTo(t, w, endsNow())
	}
	close(stop)
	appended.Wait()
	if appendErr != nil {
		t.Fatalf("append: %v", appendErr)
	}
	consumeTo(t, w, endsNow())
	if segments == 0 || files == 0 {
		t.Fatalf("reclaim dropped %d segments and %d data files: the test did not exercise it", segments, files)
	}
	if seq := w.diskSeq(); seq != seq0 {
		t.Fatalf("%d disk errors while reclaiming", seq-seq0)
	}
}

// consumeTo reads each stream up to its end in ends, checking that it
// reads the entries in order, and commits.
func consumeTo(t testing.TB, w *WAL, ends map[StreamKey]int64) {
	t.Helper()
	for k, end := range ends {
		r, err := w.Reader(k)
		if err != nil {
			t.Fatal(err)
		}
		next := r.Position()
		for next < end {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			es, err := r.Read(ctx, 8<<20, 1000)
			cancel()
			if err != nil {
				t.Fatalf("stream %v at %d of %d: %v", k, next, end, err)
			}
			for _, e := range es {
				if e.BaseOffset != next {
					t.Fatalf("stream %v: read offset %d, want %d", k, e.BaseOffset, next)
				}
				next += int64(e.Records)
			}
			if err := r.Commit(next); err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
	}
}
