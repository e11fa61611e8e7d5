package wal

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestAppendReadCommitRestart(t *testing.T) {
	for _, pol := range []SyncPolicy{SyncBatch, SyncInterval} {
		t.Run(pol.String(), func(t *testing.T) {
			dir := mkdir(t)
			o := testOptions(t)
			o.Sync = pol
			o.SyncInterval = 5 * time.Millisecond
			o.SegmentBytes = 8 << 10 // several segments
			w := openTest(t, dir, o)
			k := sk(1)
			var want []int64
			next := int64(0)
			for i := range 20 {
				e := testEntry(uint64(i), 3000, 3)
				// Entry i arrived (20-i) hours ago: Stats' oldest pending
				// age tells which entry it read.
				e.ReceivedAt = time.Now().Add(-time.Duration(20-i) * time.Hour).UnixNano()
				off := mustAppend(t, w, k, e, i%2 == 0)
				if off != next {
					t.Fatalf("append %d got offset %d, want %d", i, off, next)
				}
				want = append(want, off)
				next += 3
			}
			r, err := w.Reader(k)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Reader(k); !errors.Is(err, ErrReaderOpen) {
				t.Fatalf("second reader: %v", err)
			}
			es := readAll(t, r)
			if len(es) != 20 {
				t.Fatalf("read %d entries, want 20", len(es))
			}
			for i, e := range es {
				id, err := checkPayload(e.Data)
				if err != nil || id != uint64(i) || e.BaseOffset != want[i] {
					t.Fatalf("entry %d: id %d off %d err %v", i, id, e.BaseOffset, err)
				}
				if e.Credential.AccessKeySecret != testSecret || e.ClientID != "filebeat" || e.Records != 3 || e.Codec != 1 {
					t.Fatalf("entry %d fields: %+v", i, e.Credential)
				}
			}
			if err := r.Commit(es[9].BaseOffset + 3); err != nil {
				t.Fatal(err)
			}
			if err := r.Commit(5); err == nil {
				t.Fatal("commit of a non-boundary succeeded")
			}
			st := w.Stats()
			if len(st.Streams) != 1 || st.Streams[0].PendingEntries != 10 || st.Streams[0].Committed != 30 || st.Streams[0].NextOffset != 60 {
				t.Fatalf("stats %+v", st.Streams)
			}
			// The first pending entry is entry 10, 10 hours old.
			if age := st.Streams[0].OldestPending; age < 10*time.Hour || age > 10*time.Hour+time.Minute || st.Streams[0].PendingBytes <= 10*3000 {
				t.Fatalf("stats %+v", st.Streams[0])
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := w.AppendWait(k, testEntry(99, 10, 1), false); !errors.Is(err, ErrClosed) {
				t.Fatalf("append after close: %v", err)
			}

			w = openTest(t, dir, o)
			defer w.Close()
			off := mustAppend(t, w, k, testEntry(100, 100, 1), false)
			if off != 60 {
				t.Fatalf("offset after restart %d, want 60", off)
			}
			r, err = w.Reader(k)
			if err != nil {
				t.Fatal(err)
			}
			if r.Committed() != 30 {
				t.Fatalf("committed after restart %d", r.Committed())
			}
			es = readAll(t, r)
			if len(es) != 11 || es[0].BaseOffset != 30 || es[10].BaseOffset != 60 {
				t.Fatalf("after restart read %d entries", len(es))
			}
			st = w.Stats()
			if st.Streams[0].PendingEntries != 11 {
				t.Fatalf("pending after restart %+v", st.Streams[0])
			}
		})
	}
}

func TestConcurrentOrderAndWatch(t *testing.T) {
	w := openTest(t, mkdir(t), testOptions(t))
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seen := map[StreamKey]bool{}
	go w.WatchStreams(ctx, func(k StreamKey) {
		mu.Lock()
		seen[k] = true
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := sk(g % 4)
			var offs []int64
			var owg sync.WaitGroup
			var omu sync.Mutex
			// Fire-and-forget appends from one goroutine: offsets must
			// follow call order.
			res := make([]int64, 50)
			for i := range 50 {
				owg.Add(1)
				w.Append(k, testEntry(uint64(g*1000+i), 200, 2), false, func(off int64, err error) {
					if err != nil {
						t.Error(err)
					}
					omu.Lock()
					res[i] = off
					omu.Unlock()
					owg.Done()
				})
			}
			owg.Wait()
			offs = res
			for i := 1; i < len(offs); i++ {
				if offs[i] <= offs[i-1] {
					t.Errorf("goroutine %d: offsets not increasing: %v", g, offs)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch saw %d streams", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(w.Streams()) != 4 {
		t.Fatal(w.Streams())
	}
	waitIndexed(t, w)
	st := w.Stats()
	if st.PendingEntries != 400 {
		t.Fatalf("pending %d", st.PendingEntries)
	}
}

func TestReadBlocksUntilAppend(t *testing.T) {
	w := openTest(t, mkdir(t), testOptions(t))
	defer w.Close()
	k := sk(0)
	mustAppend(t, w, k, testEntry(1, 100, 1), false)
	r, _ := w.Reader(k)
	readAll(t, r)
	go func() {
		time.Sleep(50 * time.Millisecond)
		w.Append(k, testEntry(2, 100, 1), false, func(int64, error) {})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	es, err := r.Read(ctx, 1<<20, 10)
	if err != nil || len(es) != 1 || es[0].BaseOffset != 1 {
		t.Fatalf("blocked read: %v %v", es, err)
	}
	// Close wakes a blocked reader.
	done := make(chan error)
	go func() { _, err := r.Read(context.Background(), 1<<20, 10); done <- err }()
	time.Sleep(20 * time.Millisecond)
	w.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestInvalidEntry(t *testing.T) {
	w := openTest(t, mkdir(t), testOptions(t))
	defer w.Close()
	e := testEntry(1, 100, 0)
	if _, err := w.AppendWait(sk(0), e, false); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("zero records: %v", err)
	}
}

// TestSecretNeverInClear greps every file of the WAL directory (badger's
// and the data files) for the secret, also after a restart.
func TestSecretNeverInClear(t *testing.T) {
	dir := mkdir(t)
	o := testOptions(t)
	o.ValueLogFileSize = 1 << 20
	w := openTest(t, dir, o)
	for i := range 100 {
		e := testEntry(uint64(i), 20000, 1)
		e.Credential.AccessKeySecret = testSecret + string(rune('a'+i%5))
		mustAppend(t, w, sk(i%3), e, true)
	}
	if _, err := w.DeadLetter(sk(0), testEntry(1, 100, 1), "test"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = openTest(t, dir, o) // replays/flushes memtables
	r, _ := w.Reader(sk(0))
	es := readAll(t, r)
	if es[0].Credential.AccessKeySecret != testSecret+"a" {
		t.Fatalf("secret read back %q", es[0].Credential.AccessKeySecret)
	}
	w.Close()
	n, keyIDs := 0, 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if bytes.Contains(b, []byte(testSecret)) {
			t.Errorf("secret found in clear in %s", p)
		}
		if filepath.Ext(p) == dataFileExt && bytes.Contains(b, []byte("LTAI5tTestKeyId")) {
			keyIDs++ // the grep does see what entries carry
		}
		return nil
	})
	if n < 3 || keyIDs == 0 {
		t.Fatalf("%d files checked, %d data files with the key id", n, keyIDs)
	}
	// Without a key: stored secrets cannot be read, new ones are refused.
	o.EncryptionKey = nil
	w = openTest(t, dir, o)
	defer w.Close()
	if _, err := w.AppendWait(sk(0), testEntry(1, 100, 1), false); !errors.Is(err, ErrNoKey) {
		t.Fatalf("append with secret and no key: %v", err)
	}
	e := testEntry(2, 100, 1)
	e.Credential.AccessKeySecret = ""
	mustAppend(t, w, sk(0), e, false)
	r, _ = w.Reader(sk(0))
	if _, err := r.Read(context.Background(), 1<<20, 1); !errors.Is(err, ErrNoKey) {
		t.Fatalf("read of a sealed secret without key: %v", err)
	}
	// A wrong key fails clearly.
	w.Close()
	o.EncryptionKey = bytes.Repeat([]byte{1}, KeySize)
	w = openTest(t, dir, o)
	r, _ = w.Reader(sk(0))
	if _, err := r.Read(context.Background(), 1<<20, 1); err == nil {
		t.Fatal("read with the wrong key succeeded")
	} else {
		t.Logf("wrong key: %v", err)
	}
}

func TestKeyLoading(t *testing.T) {
	dir := t.TempDir()
	hexKey := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	os.WriteFile(filepath.Join(dir, "hex"), []byte(hexKey+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "short"), []byte("abc\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "raw"), bytes.Repeat([]byte{7}, 32), 0o600)
	if k, err := LoadKeyFile(filepath.Join(dir, "hex")); err != nil || len(k) != 32 || k[1] != 0x11 {
		t.Fatalf("hex key: %x %v", k, err)
	}
	if k, err := LoadKeyFile(filepath.Join(dir, "raw")); err != nil || k[0] != 7 {
		t.Fatalf("raw key: %v", err)
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "short")); err == nil {
		t.Fatal("short key accepted")
	} else {
		t.Log(err)
	}
	t.Setenv("WAL_TEST_KEY", "ESIzRFVmd4iZqrvM3e7/ABEiM0RVZneImaq7zN3u/wA=")
	if k, err := KeyFromEnv("WAL_TEST_KEY"); err != nil || len(k) != 32 {
		t.Fatalf("env key: %v", err)
	}
	if _, err := KeyFromEnv("WAL_TEST_KEY_UNSET"); err == nil {
		t.Fatal("unset env accepted")
	}
	if _, err := Open(t.TempDir(), Options{EncryptionKey: []byte("short")}); err == nil {
		t.Fatal("Open with a short key succeeded")
	}
}

func TestDeadLetters(t *testing.T) {
	dir := mkdir(t)
	w := openTest(t, dir, testOptions(t))
	k := sk(2)
	for i := range 5 {
		mustAppend(t, w, k, testEntry(uint64(i), 500, 2), false)
	}
	r, _ := w.Reader(k)
	es := readAll(t, r)
	id1, err := w.DeadLetter(k, es[1], "SLS: ProjectNotExist")
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := w.DeadLetter(k, es[3], "SLS: InvalidLogSize")
	if err := r.Commit(10); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = openTest(t, dir, testOptions(t))
	defer w.Close()
	if w.DeadLetterCount() != 2 {
		t.Fatalf("count %d", w.DeadLetterCount())
	}
	var ids []uint64
	for d, err := range w.DeadLetters() {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
		if d.Stream != k || d.Entry.Credential.AccessKeySecret != testSecret || d.Reason == "" {
			t.Fatalf("dead letter %+v", d)
		}
		if _, err := checkPayload(d.Entry.Data); err != nil {
			t.Fatal(err)
		}
	}
	if len(ids) != 2 || ids[0] != id1 || ids[1] != id2 {
		t.Fatalf("ids %v", ids)
	}
	off, err := w.Replay(id1)
	if err != nil || off != 10 {
		t.Fatalf("replay: %d %v", off, err)
	}
	if err := w.Drop(id2); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Replay(id1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second replay: %v", err)
	}
	if w.DeadLetterCount() != 0 {
		t.Fatalf("count %d", w.DeadLetterCount())
	}
	r, _ = w.Reader(k)
	es = readAll(t, r)
	if len(es) != 1 || es[0].BaseOffset != 10 {
		t.Fatalf("replayed entry not in stream: %d", len(es))
	}
	if id, _ := checkPayload(es[0].Data); id != 1 {
		t.Fatalf("replayed id %d", id)
	}
}

// TestSmallMemtableBigGroups: groups of many small entries are split over
// several transactions instead of failing with badger's ErrTxnTooBig.
func TestSmallMemtableBigGroups(t *testing.T) {
	o := testOptions(t)
	o.MemTableSize = 1 << 20 // badger allows ~150 KB per transaction
	o.MaxGroupEntries = 5000
	w := openTest(t, mkdir(t), o)
	defer w.Close()
	// Hold the committer so that all 5000 appends are queued as one group.
	hold, held := make(chan struct{}), make(chan struct{})
	go w.run(func(*txnWork) error { close(held); <-hold; return nil })
	<-held
	var wg sync.WaitGroup
	for i := range 5000 {
		wg.Add(1)
		e := testEntry(uint64(i), 200, 1) // stays in the LSM: counts in full
		w.Append(sk(i%50), e, false, func(_ int64, err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	close(hold)
	wg.Wait()
	waitIndexed(t, w)
	t.Logf("badger allows %d keys / %d bytes per transaction; %d groups", w.db.MaxBatchCount(), w.db.MaxBatchSize(), w.Stats().Groups)
	if st := w.Stats(); st.PendingEntries != 5000 {
		t.Fatalf("pending %d", st.PendingEntries)
	}
}
