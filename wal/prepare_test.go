package wal

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func prepareOptions(t testing.TB, on bool) Options {
	o := testOptions(t)
	o.DataFileBytes = 256 << 10
	o.PrepareDataFiles = on
	return o
}

// waitSpare waits until w's spare is ready.
func waitSpare(t *testing.T, w *WAL) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !w.data.spare.ready.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("no spare prepared within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPreparedDataFile follows a spare from its preparation to the data
// file it becomes, through Close, reopen and reclaim.
func TestPreparedDataFile(t *testing.T) {
	dir := mkdir(t)
	o := prepareOptions(t, true)
	w := openTest(t, dir, o)
	spare := filepath.Join(dir, dataDirName, spareName)
	id := uint64(0)
	appendOne := func() {
		mustAppend(t, w, sk(0), testEntry(id, 32<<10, 1), true)
		id++
	}
	// An append to a file a quarter full wakes the preparer.
	pastQuarter := func() {
		for w.data.activeSize < o.DataFileBytes/4 {
			appendOne()
		}
		appendOne()
		waitSpare(t, w)
	}
	// The first file is created empty (no spare yet).
	pastQuarter()
	wantSize(t, spare, o.DataFileBytes)
	w.rescan()
	if got, min := w.Stats().DiskBytes, allocatedOf(t, spare); got < min {
		t.Fatalf("DiskBytes %d does not count the spare's %d bytes", got, min)
	}
	first := w.data.active
	for w.data.active == first {
		appendOne()
	}
	f := w.data.active
	if !f.prepared || w.data.spare.taken.Load() != 1 || w.data.spare.missed.Load() != 1 {
		t.Fatalf("second file prepared %v, %d taken, %d missed; want the spare, 1 and 1", f.prepared, w.data.spare.taken.Load(), w.data.spare.missed.Load())
	}
	wantGone(t, spare)
	// Frames overwrite the zeros: the file keeps its prepared size.
	if w.data.activeSize >= o.DataFileBytes {
		t.Fatalf("active file already full (%d bytes)", w.data.activeSize)
	}
	wantSize(t, f.path, o.DataFileBytes)
	// A consumed prepared active file is kept by reclaim: a new one
	// would free nothing.
	r, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	es := readAll(t, r)
	if len(es) != int(id) {
		t.Fatalf("read %d entries, appended %d", len(es), id)
	}
	committedAt := int64(id) // one record per entry: offset = id
	if err := r.Commit(committedAt); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reclaim(); err != nil {
		t.Fatal(err)
	}
	if w.data.active != f {
		t.Fatal("reclaim dropped the prepared active file")
	}
	if _, err := os.Stat(first.path); !os.IsNotExist(err) {
		t.Fatalf("the consumed first file is still there (%v)", err)
	}
	pastQuarter()
	size := w.data.activeSize
	r.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Close cuts the zero tail; the whole spare stays for the next Open.
	wantSize(t, f.path, size)
	wantSize(t, spare, o.DataFileBytes)

	w = openTest(t, dir, o)
	defer w.Close()
	if !w.data.spare.ready.Load() {
		t.Fatal("the spare left by Close is not ready after Open")
	}
	mustAppend(t, w, sk(0), testEntry(id, 100, 1), true)
	if !w.data.active.prepared {
		t.Fatal("the first file after Open is not the spare")
	}
	r, err = w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	es = readAll(t, r)
	if int64(len(es)) != int64(id)+1-committedAt || es[0].BaseOffset != committedAt {
		t.Fatalf("after reopen read %d entries from %d, want %d from %d", len(es), es[0].BaseOffset, int64(id)+1-committedAt, committedAt)
	}
	for i, e := range es {
		if got, err := checkPayload(e.Data); err != nil || got != uint64(committedAt)+uint64(i) {
			t.Fatalf("entry %d: id %d, %v", e.BaseOffset, got, err)
		}
	}
}

// TestPrepareOff: with PrepareDataFiles false no spare is made, and one
// left by an earlier run is deleted at Open.
func TestPrepareOff(t *testing.T) {
	dir := mkdir(t)
	w := openTest(t, dir, prepareOptions(t, true))
	for i := range 12 {
		mustAppend(t, w, sk(0), testEntry(uint64(i), 32<<10, 1), true)
	}
	waitSpare(t, w)
	w.Close()
	w = openTest(t, dir, prepareOptions(t, false))
	defer w.Close()
	wantGone(t, filepath.Join(dir, dataDirName, spareName))
	for i := range 20 {
		mustAppend(t, w, sk(0), testEntry(uint64(100+i), 32<<10, 1), true)
	}
	time.Sleep(100 * time.Millisecond)
	if len(sparesIn(dir)) != 0 || w.data.spare != nil || w.data.active.prepared {
		t.Fatalf("a spare with preparation off: %v", sparesIn(dir))
	}
}

// allocatedOf is the space path takes on disk.
func allocatedOf(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return allocated(fi)
}
