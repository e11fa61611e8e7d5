package wal

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// lockedBuf collects log output.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// loggedOptions are testOptions whose log lines are kept in the returned
// buffer, for tests of what the WAL logs.
func loggedOptions(t *testing.T) (Options, *lockedBuf) {
	logs := &lockedBuf{}
	o := testOptions(t)
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return o, logs
}

// fillUntilFull appends 64 KiB entries, 32 at a time, until some fail; it
// returns how many succeeded and the first error.
func fillUntilFull(t *testing.T, w *WAL, max int) (int, error) {
	ok := 0
	for i := 0; i < max; i += 32 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		for j := range 32 {
			wg.Add(1)
			w.Append(sk(j%2), testEntry(uint64(i+j), 64<<10, 1), false, func(_ int64, err error) {
				mu.Lock()
				if err == nil {
					ok++
				} else if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				wg.Done()
			})
		}
		wg.Wait()
		if firstErr != nil {
			return ok, firstErr
		}
	}
	t.Fatalf("%d appends and still not full", max)
	return 0, nil
}

func TestDiskFull(t *testing.T) {
	dir := mkdir(t)
	o, logs := loggedOptions(t)
	o.MaxDiskBytes = 24 << 20
	o.ValueLogFileSize = 1 << 20
	o.SegmentBytes = 256 << 10
	o.MemTableSize = 4 << 20
	w := openTest(t, dir, o)
	defer w.Close()
	t.Logf("empty WAL takes %d KiB", w.rescanned()>>10)

	stored, err := fillUntilFull(t, w, 10000)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("append past the limit: %v", err)
	}
	t.Logf("%d entries stored, then: %v; disk %d MiB, pressure %.2f", stored, err, w.DiskBytes()>>20, w.Pressure())
	if p := w.Pressure(); p < 0.9 {
		t.Fatalf("pressure %.2f at the limit", p)
	}
	for range 50 { // still refused, and not logged again
		if _, err := w.AppendWait(sk(0), testEntry(1, 64<<10, 1), true); !errors.Is(err, ErrFull) {
			t.Fatalf("append while full: %v", err)
		}
	}
	if n := strings.Count(logs.String(), "disk buffer full"); n != 1 {
		t.Fatalf("full logged %d times:\n%s", n, logs.String())
	}
	// Nothing stored is harmed.
	if got := consumeAll(t, w); got != stored {
		t.Fatalf("read %d entries back, stored %d", got, stored)
	}
	res, err := w.Reclaim()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reclaim: %d segments, %d GCs, %d KiB -> %d KiB; pressure %.2f", res.Segments, res.GCRewrites, res.Before>>10, res.After>>10, w.Pressure())
	if w.Pressure() != 0 {
		t.Fatalf("pressure %.2f after reclaim", w.Pressure())
	}
	more, err := fillUntilFull(t, w, 10000)
	if more < stored/2 || !errors.Is(err, ErrFull) {
		t.Fatalf("after reclaim only %d appends succeeded (%v)", more, err)
	}
	if !strings.Contains(logs.String(), "appends resume") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

// TestDiskFullTmpfs fills a real, small file system. badger writes its
// value log through mmap, where ENOSPC is a SIGBUS rather than an error, so
// the WAL must stop at MinFreeDiskBytes before the file system is full.
// Needs root (mount); skipped otherwise.
func TestDiskFullTmpfs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	o := testOptions(t)
	o.ValueLogFileSize = 2 << 20
	o.SegmentBytes = 256 << 10
	o.MemTableSize = 4 << 20
	w := openTest(t, mnt, o)
	defer w.Close()
	stored, err := fillUntilFull(t, w, 10000)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("append on a full file system: %v", err)
	}
	t.Logf("tmpfs of 40 MiB: %d entries stored, then %v", stored, err)
	if got := consumeAll(t, w); got != stored {
		t.Fatalf("read %d entries back, stored %d", got, stored)
	}
	if _, err := w.Reclaim(); err != nil {
		t.Fatal(err)
	}
	if more, _ := fillUntilFull(t, w, 10000); more < stored/2 {
		t.Fatalf("after reclaim only %d appends succeeded", more)
	}
}

// TestDataFileWriteError: a write to the data file that fails and cannot
// be undone (here the descriptor is swapped for a read-only one, so the
// cut-back fails too) fails its append with a disk error, logged once, and
// stops appends until a restart: complete frames of the failed write could
// otherwise take the offsets of acknowledged ones at recovery. After the
// restart offsets go on and everything acknowledged reads back.
func TestDataFileWriteError(t *testing.T) {
	dir := mkdir(t)
	o, logs := loggedOptions(t)
	w := openTest(t, dir, o)
	for i := range 3 {
		mustAppend(t, w, sk(0), testEntry(uint64(i), 1000, 1), false)
	}
	err := w.run(func(*txnWork) error { // in the committer goroutine
		f := w.data.active
		ro, err := os.Open(f.path)
		if err != nil {
			return err
		}
		f.closeFD()
		f.mu.Lock()
		f.fd = ro
		f.mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := w.AppendWait(sk(0), testEntry(uint64(100+i), 1000, 1), false); err == nil || errors.Is(err, ErrFull) {
			t.Fatalf("append %d after a failed write: %v", i, err)
		} else if i > 0 && !errors.Is(err, errBroken) {
			t.Fatalf("append %d after a failed write: %v, want %v", i, err, errBroken)
		}
	}
	if n := strings.Count(logs.String(), "disk error"); n != 1 {
		t.Fatalf("disk error logged %d times:\n%s", n, logs.String())
	}
	// Positions and dead letters still work: their rows are badger's.
	r, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	es := readAll(t, r)
	if err := r.Commit(es[0].BaseOffset + 1); err != nil {
		t.Fatalf("commit while appends are stopped: %v", err)
	}
	r.Close()
	w.Close()
	w = openTest(t, dir, testOptions(t))
	defer w.Close()
	if off := mustAppend(t, w, sk(0), testEntry(3, 1000, 1), false); off != 3 {
		t.Fatalf("append after restart at offset %d, want 3", off)
	}
	r, err = w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	es = readAll(t, r)
	if len(es) != 3 || es[0].BaseOffset != 1 {
		t.Fatalf("read %d entries after restart from offset %d, want 3 from 1", len(es), es[0].BaseOffset)
	}
	for _, e := range es {
		id, err := checkPayload(e.Data)
		if err != nil || id != uint64(e.BaseOffset) {
			t.Fatalf("entry at %d: id %d err %v", e.BaseOffset, id, err)
		}
	}
}
