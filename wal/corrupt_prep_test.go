package wal

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Helpers of the corruption table's cases about prepared data files
// (prepare.go): a file's zero tail, a spare left by a crash.

// newestDataFile is the data file with the highest number.
func newestDataFile(t *testing.T, dir string) string {
	fs := files(t, dir, dataFileExt)
	return fs[len(fs)-1]
}

// fileSize returns path's size.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// writeZeros writes zeros to path from at to to (blocks really written,
// as the preparer does, not a hole), creating the file if needed.
func writeZeros(t *testing.T, path string, at, to int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, to-at), at); err != nil {
		t.Fatal(err)
	}
}

// frameStart returns the file and the offset of the frame holding the
// payload of entry id (48 KiB, as writeCorpus writes them).
func frameStart(t *testing.T, dir string, id uint64) (string, int64) {
	t.Helper()
	f, pos := findInFiles(t, dir, dataFileExt, payload(id, 48<<10)[:16])
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	// The frame header and the entry's header precede the payload; the
	// entry's header holds no frameMagic byte before its Data (see
	// "flipped bytes in a frame header").
	at := bytes.LastIndexByte(b[:pos-40], frameMagic)
	if h, err := decodeFrameHeader(b[at:]); err != nil || int(h.bodyLen) < pos-at {
		t.Fatalf("no frame header before entry %d in %s: %v", id, f, err)
	}
	return f, int64(at)
}

// wantSize fails unless path is size bytes long.
func wantSize(t *testing.T, path string, size int64) {
	t.Helper()
	if got := fileSize(t, path); got != size {
		t.Fatalf("%s is %d bytes, want %d", filepath.Base(path), got, size)
	}
}

// wantGone fails if path exists.
func wantGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("%s is still there (%v)", filepath.Base(path), err)
	}
}

// tornLog is what a corruption case expects Open to log about a torn data
// file: the warning is the only thing that tells a torn write from a
// clean zero tail when both are cut at the same place.
type tornLog int

const (
	tornUnchecked tornLog = iota
	tornWarned            // "torn data file cut" logged
	tornQuiet             // nothing torn logged
)

// tornWarning is the start of replay's warning about a torn file.
const tornWarning = "torn data file cut"

// capturedLog is a logger for t that also keeps its lines. Safe for
// concurrent use.
type capturedLog struct {
	t  testing.TB
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (c *capturedLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.b.Write(p)
	c.mu.Unlock()
	return testWriter{c.t}.Write(p)
}

func (c *capturedLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

func (c *capturedLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(c, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// check fails unless the log says what want expects.
func (want tornLog) check(t *testing.T, log string) {
	t.Helper()
	switch got := strings.Contains(log, tornWarning); {
	case want == tornWarned && !got:
		t.Fatalf("no %q warning logged", tornWarning)
	case want == tornQuiet && got:
		t.Fatalf("a %q warning logged for a clean end", tornWarning)
	}
}

// firstIDs is a corruption case's check: stream 0 read the corpus's
// first n entries in order, and nothing was reported corrupt.
func firstIDs(n int) func(t *testing.T, got readOutcome) {
	return func(t *testing.T, got readOutcome) {
		t.Helper()
		if len(got.corrupt) != 0 || len(got.ids) != n {
			t.Fatalf("got %d ids, corrupt %v; want the first %d", len(got.ids), got.corrupt, n)
		}
		for i, id := range got.ids {
			if id != uint64(i) {
				t.Fatalf("entry %d is id %d", i, id)
			}
		}
	}
}
