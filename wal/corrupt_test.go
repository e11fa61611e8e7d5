package wal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The corruption table (in the manner of Prometheus tsdb's wlog tests): a
// WAL is written and closed, one kind of damage is done to its files, and
// each case states whether Open fails and, if not, what a reader returns.
// Nothing may panic.

const corruptEntries = 60

func corruptOptions(t testing.TB) Options {
	o := testOptions(t)
	o.ValueLogFileSize = 1 << 20
	o.DataFileBytes = 512 << 10 // several data files
	o.SegmentBytes = 512 << 10
	return o
}

// writeCorpus fills stream 0 with corruptEntries entries of 48 KiB (ids
// 0..n-1, 2 records each) and stream 1 with a few small ones, written
// amid stream 0's.
func writeCorpus(t *testing.T, dir string) {
	w := openTest(t, dir, corruptOptions(t))
	for i := range corruptEntries {
		mustAppend(t, w, sk(0), testEntry(uint64(i), 48<<10, 2), false)
		if i == corruptEntries/2 {
			// In the middle: away from the oldest file and the torn tail.
			for j := range 5 {
				mustAppend(t, w, sk(1), testEntry(uint64(1000+j), 100, 1), false)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// readOutcome is what a reader of stream 0 got: good ids in order and the
// offsets reported corrupt (each skipped with Commit(Next)).
type readOutcome struct {
	ids     []uint64
	corrupt []int64
}

func readThrough(t *testing.T, w *WAL, k StreamKey) readOutcome {
	t.Helper()
	var out readOutcome
	r, err := w.Reader(k)
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	defer r.Close()
	for range 10 * corruptEntries {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		es, err := r.Read(ctx, 1<<20, 16)
		cancel()
		var ce *CorruptError
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return out
		case errors.As(err, &ce):
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("CorruptError does not wrap ErrCorrupt")
			}
			out.corrupt = append(out.corrupt, ce.Offset)
			if ce.Next <= ce.Offset {
				return out // cannot skip: nothing after it is reachable
			}
			if err := r.Commit(ce.Next); err != nil {
				t.Fatalf("commit past corrupt entry: %v", err)
			}
			continue
		case err != nil:
			t.Fatalf("read: %v", err)
		}
		for _, e := range es {
			id, err := checkPayload(e.Data)
			if err != nil {
				t.Fatalf("entry at %d passed the WAL's checks with a bad payload: %v", e.BaseOffset, err)
			}
			out.ids = append(out.ids, id)
		}
	}
	t.Fatal("reader does not make progress")
	return out
}

func files(t *testing.T, dir, ext string) []string {
	if ext == dataFileExt {
		dir = filepath.Join(dir, dataDirName)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
	sort.Strings(m)
	if len(m) == 0 {
		t.Fatalf("no %s files in %s", ext, dir)
	}
	return m
}

// findInFiles returns the file and position of needle.
func findInFiles(t *testing.T, dir, ext string, needle []byte) (string, int) {
	for _, f := range files(t, dir, ext) {
		b, _ := os.ReadFile(f)
		if i := bytes.Index(b, needle); i >= 0 {
			return f, i
		}
	}
	t.Fatalf("needle not found in %s files", ext)
	return "", 0
}

func TestCorruption(t *testing.T) {
	all := func() []uint64 {
		ids := make([]uint64, corruptEntries)
		for i := range ids {
			ids[i] = uint64(i)
		}
		return ids
	}
	cases := []struct {
		name string
		// damage breaks the closed WAL in dir.
		damage func(t *testing.T, dir string)
		// openErr: Open must fail with an error wrapping this; openMsg: an
		// error saying this (both empty: Open must succeed).
		openErr error
		openMsg string
		// check judges what a reader of stream 0 saw.
		check func(t *testing.T, got readOutcome)
		// nextOffset, if set, is the offset the next append to stream 0
		// must get.
		nextOffset int64
	}{
		{
			name:   "intact",
			damage: func(*testing.T, string) {},
			check: func(t *testing.T, got readOutcome) {
				if len(got.corrupt) != 0 || len(got.ids) != corruptEntries {
					t.Fatalf("got %+v", got)
				}
			},
		},
		{
			// The newest data file is cut inside the last entry, whose
			// index row survived: a disk that lost an acknowledged write.
			name: "torn last write under its index row",
			damage: func(t *testing.T, dir string) {
				f, pos := findInFiles(t, dir, dataFileExt, payload(corruptEntries-1, 48<<10)[:16])
				if err := os.Truncate(f, int64(pos+1000)); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, got readOutcome) {
				// Every entry before the torn one survives; the torn one is
				// reported (not returned with bad data).
				if len(got.ids) != corruptEntries-1 || !equalPrefix(got.ids, all()) ||
					len(got.corrupt) != 1 || got.corrupt[0] != 2*(corruptEntries-1) {
					t.Fatalf("got %d ids, corrupt %v", len(got.ids), got.corrupt)
				}
			},
		},
		{
			// A crash before the index rows of the last entries were
			// written, with the very last write torn: recovery indexes
			// the whole entries after the checkpoint and cuts the torn one
			// (never acknowledged: its sync did not finish).
			name: "torn tail after the checkpoint",
			damage: func(t *testing.T, dir string) {
				loseIndexFrom(t, dir, 50)
				f, pos := findInFiles(t, dir, dataFileExt, payload(corruptEntries-1, 48<<10)[:16])
				if err := os.Truncate(f, int64(pos+1000)); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, got readOutcome) {
				if len(got.corrupt) != 0 || len(got.ids) != corruptEntries-1 || !equalPrefix(got.ids, all()) {
					t.Fatalf("got %d ids, corrupt %v", len(got.ids), got.corrupt)
				}
			},
			nextOffset: 2 * (corruptEntries - 1),
		},
		{
			// As above, but the frame lost is in the middle: the rest of
			// its file is cut with it, and the entries in later files are
			// indexed past the gap (they may have been acknowledged in a
			// new file after a failed sync); the reader reports the gap.
			name: "lost frame after the checkpoint, later files intact",
			damage: func(t *testing.T, dir string) {
				loseIndexFrom(t, dir, 50)
				f, pos := findInFiles(t, dir, dataFileExt, payload(52, 48<<10)[:16])
				flip(t, f, pos+100, 1)
			},
			check: func(t *testing.T, got readOutcome) {
				if len(got.corrupt) != 1 || got.corrupt[0] != 104 || contains(got.ids, 52) || !contains(got.ids, 51) || !contains(got.ids, corruptEntries-1) {
					t.Fatalf("got ids %v, corrupt %v", got.ids, got.corrupt)
				}
			},
			nextOffset: 2 * corruptEntries,
		},
		{
			name: "flipped bytes in a value",
			damage: func(t *testing.T, dir string) {
				f, pos := findInFiles(t, dir, dataFileExt, payload(17, 48<<10)[:16])
				flip(t, f, pos+20000, 3)
			},
			check: func(t *testing.T, got readOutcome) {
				// Exactly entry 17 (offset 34) is reported; all others read.
				if len(got.corrupt) != 1 || got.corrupt[0] != 34 || len(got.ids) != corruptEntries-1 || contains(got.ids, 17) {
					t.Fatalf("got %d ids, corrupt %v", len(got.ids), got.corrupt)
				}
			},
		},
		{
			name: "flipped bytes in an entry header",
			damage: func(t *testing.T, dir string) {
				f, pos := findInFiles(t, dir, dataFileExt, payload(30, 48<<10)[:16])
				flip(t, f, pos-40, 2) // the entry's header, just before Data
			},
			check: func(t *testing.T, got readOutcome) {
				if len(got.corrupt) != 1 || got.corrupt[0] != 60 || len(got.ids) != corruptEntries-1 {
					t.Fatalf("got %d ids, corrupt %v", len(got.ids), got.corrupt)
				}
			},
		},
		{
			name: "flipped bytes in a frame header",
			damage: func(t *testing.T, dir string) {
				f, pos := findInFiles(t, dir, dataFileExt, payload(40, 48<<10)[:16])
				// The frame header (21 bytes) precedes the entry's
				// header, which precedes Data: flip the frame's length.
				b, _ := os.ReadFile(f)
				at := bytes.LastIndexByte(b[:pos-40], frameMagic)
				flip(t, f, at+14, 1)
			},
			check: func(t *testing.T, got readOutcome) {
				if len(got.corrupt) != 1 || got.corrupt[0] != 80 || len(got.ids) != corruptEntries-1 || contains(got.ids, 40) {
					t.Fatalf("got %d ids, corrupt %v", len(got.ids), got.corrupt)
				}
			},
		},
		{
			name: "garbage in an entry's index row",
			damage: func(t *testing.T, dir string) {
				withDB(t, dir, func(txn *badger.Txn) error {
					// Entry 5 (offset 10) of stream 0 (sid 1, segment 0):
					// the value is replaced, the key kept.
					return txn.Set(entryKey(1, 0, 10), bytes.Repeat([]byte("garbage!"), 100))
				})
			},
			check: func(t *testing.T, got readOutcome) {
				if len(got.corrupt) != 1 || got.corrupt[0] != 10 || len(got.ids) != corruptEntries-1 || contains(got.ids, 5) {
					t.Fatalf("got %d ids, corrupt %v", len(got.ids), got.corrupt)
				}
			},
		},
		{
			name: "entry stored under the wrong offset",
			damage: func(t *testing.T, dir string) {
				withDB(t, dir, func(txn *badger.Txn) error {
					item, err := txn.Get(entryKey(1, 0, 4))
					if err != nil {
						return err
					}
					v, _ := item.ValueCopy(nil) // a valid entry, offset 4
					return txn.Set(entryKey(1, 0, 6), v)
				})
			},
			check: func(t *testing.T, got readOutcome) {
				if len(got.corrupt) != 1 || got.corrupt[0] != 6 || len(got.ids) != corruptEntries-1 {
					t.Fatalf("got %d ids, corrupt %v", len(got.ids), got.corrupt)
				}
			},
		},
		{
			name: "entry key deleted",
			damage: func(t *testing.T, dir string) {
				withDB(t, dir, func(txn *badger.Txn) error { return txn.Delete(entryKey(1, 0, 8)) })
			},
			check: func(t *testing.T, got readOutcome) {
				// The hole is reported as offsets 8..10, not skipped silently.
				if len(got.corrupt) != 1 || got.corrupt[0] != 8 || len(got.ids) != corruptEntries-1 || contains(got.ids, 4) {
					t.Fatalf("got %d ids, corrupt %v", len(got.ids), got.corrupt)
				}
			},
		},
		{
			name: "missing MANIFEST",
			damage: func(t *testing.T, dir string) {
				os.Remove(filepath.Join(dir, "MANIFEST"))
			},
			// badger would start afresh and delete the tables; Open refuses.
			openErr: ErrCorrupt,
		},
		{
			name: "missing .sst",
			damage: func(t *testing.T, dir string) {
				os.Remove(files(t, dir, ".sst")[0])
			},
			// badger's own check; its error wraps no sentinel.
			openMsg: "file does not exist for table",
		},
		{
			name: "missing oldest data file",
			damage: func(t *testing.T, dir string) {
				os.Remove(files(t, dir, dataFileExt)[0])
			},
			check: func(t *testing.T, got readOutcome) {
				// The entries whose values were in the file are reported
				// one by one; the rest read.
				if len(got.corrupt) == 0 || len(got.ids)+len(got.corrupt) != corruptEntries {
					t.Fatalf("got %d ids, corrupt %v", len(got.ids), got.corrupt)
				}
				t.Logf("%d entries lost with the file, %d read", len(got.corrupt), len(got.ids))
			},
		},
		{
			name: "garbage checkpoint",
			damage: func(t *testing.T, dir string) {
				withDB(t, dir, func(txn *badger.Txn) error { return txn.Set(checkpointKey, []byte("xx")) })
			},
			openErr: ErrCorrupt,
		},
		{
			name: "garbage stream metadata",
			damage: func(t *testing.T, dir string) {
				withDB(t, dir, func(txn *badger.Txn) error { return txn.Set(sidKey(tagMeta, 1), []byte("xx")) })
			},
			openErr: ErrCorrupt,
		},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dir := mkdir(t)
			writeCorpus(t, dir)
			tc.damage(t, dir)
			w, err := Open(dir, corruptOptions(t))
			if tc.openErr != nil || tc.openMsg != "" {
				if err == nil {
					w.Close()
					t.Fatalf("Open succeeded, want an error %v%s", tc.openErr, tc.openMsg)
				}
				if tc.openMsg != "" && !strings.Contains(err.Error(), tc.openMsg) {
					t.Fatalf("Open: %v, want an error saying %q", err, tc.openMsg)
				}
				if tc.openErr != nil && !errors.Is(err, tc.openErr) {
					t.Fatalf("Open: %v, want an error wrapping %v", err, tc.openErr)
				}
				t.Logf("Open: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer w.Close()
			got := readThrough(t, w, sk(0))
			t.Logf("read %d entries, corrupt offsets %v", len(got.ids), got.corrupt)
			tc.check(t, got)
			// The other stream is untouched, and the WAL still takes appends.
			if o := readThrough(t, w, sk(1)); len(o.ids) != 5 {
				t.Fatalf("stream 1: %+v", o)
			}
			off := mustAppend(t, w, sk(0), testEntry(999, 100, 1), true)
			if tc.nextOffset != 0 && off != tc.nextOffset {
				t.Fatalf("next append at offset %d, want %d", off, tc.nextOffset)
			}
		})
	}
}

func flip(t *testing.T, path string, at, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		b[at+i] ^= 0x5a
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func equalPrefix(got, want []uint64) bool {
	for i := range got {
		if i >= len(want) || got[i] != want[i] {
			return false
		}
	}
	return true
}

func contains(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// withDB opens the closed WAL's badger database directly and runs fn in
// one update.
func withDB(t *testing.T, dir string, fn func(txn *badger.Txn) error) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithValueLogFileSize(1 << 20))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// loseIndexFrom makes the closed corpus look like a crash kept the index
// of stream 0 only up to entry keep: its later index rows are gone and the
// checkpoint points at entry keep's frame.
func loseIndexFrom(t *testing.T, dir string, keep int64) {
	t.Helper()
	withDB(t, dir, func(txn *badger.Txn) error {
		item, err := findEntryRow(txn, 1, 2*keep)
		if err != nil {
			return err
		}
		v, _ := item.ValueCopy(nil)
		ptr, err := decodeDataPtr(v)
		if err != nil {
			return err
		}
		if err := rollBackStream(txn, 1, 2*keep); err != nil {
			return err
		}
		return txn.Set(checkpointKey, dataPos{file: ptr.file, pos: ptr.pos}.encode())
	})
}

// findEntryRow finds the index row of stream sid at offset off in any
// index segment.
func findEntryRow(txn *badger.Txn, sid uint32, off int64) (*badger.Item, error) {
	opt := badger.DefaultIteratorOptions
	opt.Prefix = sidKey(tagEntry, sid)
	it := txn.NewIterator(opt)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if _, _, o, ok := parseEntryKey(it.Item().Key()); ok && o == off {
			return it.Item(), nil
		}
	}
	return nil, badger.ErrKeyNotFound
}

// rollBackStream makes the index of stream sid end before offset from, as
// if the index rows after it had never been written.
func rollBackStream(txn *badger.Txn, sid uint32, from int64) error {
	opt := badger.DefaultIteratorOptions
	opt.Prefix = sidKey(tagEntry, sid)
	it := txn.NewIterator(opt)
	var del [][]byte
	m := streamMeta{Next: from}
	for it.Rewind(); it.Valid(); it.Next() {
		_, seg, o, _ := parseEntryKey(it.Item().Key())
		if o >= from {
			del = append(del, it.Item().KeyCopy(nil))
			continue
		}
		m.Seg, m.HasSeg = seg, true
	}
	it.Close()
	for _, k := range del {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	item, err := txn.Get(sidKey(tagMeta, sid))
	if err != nil {
		return err
	}
	v, _ := item.ValueCopy(nil)
	old, err := decodeMeta(v)
	if err != nil {
		return err
	}
	// Totals as they stood before entry from: every entry of the corpus
	// has the same stored size.
	per := old.CumBytes / old.CumEntries
	m.CumEntries = from / 2
	m.CumBytes = per * m.CumEntries
	m.SegBytes = old.SegBytes
	return txn.Set(sidKey(tagMeta, sid), m.encode())
}
