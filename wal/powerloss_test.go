package wal

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestPowerLoss runs the WAL in a child process (the crash tests' kit:
// crashLog.runChild, TestHelperProcess, consumeCommitting, verifyCrash)
// under 16 appenders and 4 readers committing after each read (with
// Commit, or in half the rounds CommitAsync, as the shardwriter does),
// dead letters stored, dropped and replayed every few milliseconds
// (churnDeadLetters), with Reclaim every 50 ms (its value-log GC
// included), SIGKILLs it after a random number (1–3000) of
// acknowledgements, then cuts the power on its directory (powerImage.cut)
// and reopens it. Many rounds in one directory.
//
// What the power cut simulates, from what the child's syncs reported
// (recordSyncs, through the WAL's observer hooks):
//
//   - The WAL's data files: everything past the size a file had before
//     its last successful fdatasync may be lost: the file is cut there,
//     or cut further on (later writes partly on disk), or cut there with
//     up to 8 KiB of garbage after it (a torn write), or keeps its bytes
//     with one 4 KiB page past that size zeroed (pages written back out of
//     order).
//   - New data files whose directory fsync had not returned are gone.
//   - Data files Reclaim deleted come back, cut at their synced size, in
//     1 round of 2 (the unlink was not followed by a directory fsync).
//   - badger's memtable logs (*.mem) and value logs (*.vlog), in 4 cuts
//     of 5: each goes back to its content just after the last sync that
//     covered it — the syncer's fdatasync of the log, or badger's DB.Sync
//     of the active ones, credited only when no new log appeared during
//     that call (badger syncs the log active when it takes its lock,
//     which cannot be told from outside then). A
//     log never synced, or whose name no directory fsync of the syncer
//     covered, is deleted. A log put back keeps, in 2 cases of 3, some
//     of its later writes: those up to a random 4 KiB page, or each page
//     they changed in 1 case of 2 (a torn tail, pages written back out of
//     order). In half of those cuts the oldest few logs of
//     each kind keep every write instead (the kernel's writeback, which
//     takes the files dirtied first first, got that far). In 1 cut of 5
//     they all keep every write (the SIGKILL case, with the data files
//     cut as above).
//
// What it does not simulate:
//
//   - badger's tables (*.sst), MANIFEST, KEYREGISTRY and DISCARD stay as
//     the kill left them: badger fsyncs a table (msync) and the MANIFEST
//     itself, but not the directory after creating a table before its
//     memtable log is deleted (badger v4.9.6 db.go handleMemTableFlush);
//     ext4 and XFS journal those names in order, a file system that
//     reorders them could lose a flushed memtable.
//   - A synced badger log's content is credited as it was when the copy
//     was taken, just after the sync: writes between the sync and the
//     copy count as on disk. Logs badger deleted stay deleted (unlinks of
//     badger's logs are taken as durable).
//   - What Open left when a round starts counts as durable, names included
//     (Open's replay syncs badger; the new memtable log's name is
//     fsync'd only at the first sync).
//   - Writes within a data file's synced size are never lost or torn
//     (no lying disk cache, no bit rot: corrupt_test.go covers corrupt
//     frames), and a truncation by recovery is durable (it is fsync'd).
//   - badger flushing a memtable whose rows point into the unsynced tail
//     of the value log: the table is durable, the values are not. For a
//     dead letter being stored that is one never acknowledged; for one
//     Reclaim's value-log GC is rewriting, its newer row would hide the
//     old one, still on disk, until badger's files are synced
//     (collectValueLogs) — the cut after Reclaim returned
//     (TestPowerLossAfterValueLogGC) cannot show it.
//   - A newer badger log on disk while an older one's unsynced tail is
//     not, other than by the WAL's own syncs (which go oldest first,
//     TestPowerLossDuringSyncAfterMemtableRotated): say another process's
//     sync(2) walking the files in another order. The index rows and lazy
//     positions, never synced on purpose, would then keep a checkpoint
//     without rows before it, and recovery would not index those entries
//     again. Linux's writeback takes the files dirtied first first, and
//     badger flushes a left memtable to a table within milliseconds;
//     this is neither simulated nor handled.
//   - The directory holding the WAL: Open fsyncs the parents of the
//     directories it creates (TestOpenMakesNewDirectoriesDurable); the
//     test's directory exists before.
//
// Checked after each cut: Open succeeds; every acknowledged append not
// below its stream's committed position is readable, byte for byte, at
// its offset, exactly once (verifyCrash); no returned Commit went back;
// no position is ahead of its stream's end ("committed position beyond
// the stream end" is never logged); and no append the child acknowledged
// got an offset below the committed position its stream had when the
// round began (a position past data a power loss took would skip it). A
// gap in a stream's offsets is passed (readWaiting): unsynced frames
// written later can be on disk while earlier ones are not; an
// acknowledged entry in it counts as missing. Dead letters (deadLog.verify):
// every one stored (DeadLetter returned) is readable and intact unless
// dropped or replayed (a Drop or Replay the kill interrupted may have
// happened; a replay interrupted after its frame was synced is finished
// by recovery), none dropped or replayed is back, none is both in the
// table and in its stream; a row of a dead letter the kill interrupted
// may be unreadable (its batch in the value log not on disk).
//
// A dropped dead letter used to come back once in tens of rounds, with
// Reclaim's value-log GC running (badger's rewrite wrote its old row back
// under its delete; deadletter_shadow.go, and the deterministic
// TestDroppedDeadLetterNotWrittenBackByValueLogGC); that fails the test.
//
// 20 rounds, about 4 s (4 under -short or -race); SLSRELAY_LONG_TESTS=1
// runs 300.
func TestPowerLoss(t *testing.T) {
	rounds, budget := crashRounds(20, 4, 300)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WAL_POWER_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (WAL_POWER_SEED to run it again)", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	l := newCrashLog(t)
	img := newPowerImage(t, l.dir)
	dead := newDeadLog()
	logs := &lockedBuf{}
	o := powerOptions()
	o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	start := time.Now()
	round := 0
	for ; round < rounds && time.Since(start) < budget; round++ {
		n := 1 + rng.IntN(3000)
		img.startRound()
		before := maps.Clone(l.committed)
		killed := false
		// In half the rounds the readers commit lazily, as the
		// shardwriter does: badger's files are then synced only for
		// Reclaim (every 50 ms), not at every Commit.
		lazy := rng.IntN(2) == 0
		env := []string{crashEnvPower + "=" + img.copies, crashEnvPowerLazy + "=" + strconv.Itoa(map[bool]int{false: 0, true: 1}[lazy])}
		acks, ps := l.runChild(round+1, env, func(acks int) bool {
			killed = killed || acks == n
			return acks == n
		}, func(f []string) {
			if !img.onLine(f) && !dead.onLine(t, l, f) {
				t.Logf("child: %v", f)
			}
		})
		if ws, ok := ps.Sys().(syscall.WaitStatus); !killed || !ok || !ws.Signaled() {
			t.Fatalf("round %d: the child ended (%v) before %d acks", round, ps, n)
		}
		c := img.cut(rng)
		t.Logf("[%v] round %d: killed after %d acks (lazy commits %v), power cut: %+v", time.Since(start).Round(time.Millisecond), round, acks, lazy, c)
		for id, rec := range l.acked {
			if int(id>>40) == round+1 && rec.off < before[rec.part] {
				t.Fatalf("round %d: id %x acknowledged at offset %d of partition %d, below the position %d committed when the round began", round, id, rec.off, rec.part, before[rec.part])
			}
		}
		found := verifyReopen(t, l.dir, o, l.acked, l.committed, true)
		dead.verify(t, l.dir, o, found)
		if s := logs.String(); strings.Contains(s, "committed position beyond the stream end") {
			t.Fatalf("round %d: a committed position survived the power cut beyond its stream's end", round)
		}
	}
	t.Logf("%d power cuts, %d appends acknowledged in all (replayed dead letters included), %d dead letters stored at the end, %d dropped or replayed", round, len(l.acked), len(dead.stored), len(dead.gone))
}

// TestPowerLossMemtableRotatedDuringSync: badger starts a new memtable
// (the active one is full) after the syncer listed badger's logs and
// before its DB.Sync. DB.Sync syncs only the new memtable's log; the old
// one, which holds the row of the stream the append created, was the
// newest in the listing, so the syncer did not fdatasync it either, and
// the append was acknowledged. A power loss before badger has flushed
// the old memtable to a table loses the row, and recovery skips the
// frames of a stream it does not know: the acknowledged entry is gone.
func TestPowerLossMemtableRotatedDuringSync(t *testing.T) {
	w, o, img, mu := openRecorded(t)
	dir := w.dir
	acked := map[uint64]ackRec{1: {0, mustAppend(t, w, sk(0), testEntry(1, 1<<10, 1), false)}}
	waitIndexed(t, w)
	tables := mkdir(t)
	var logsThen []string // badger's logs when the tables were copied
	// A read in progress keeps the left memtable's log on disk after
	// badger's flush (see orphanSegments), as a flush slower than the
	// sync would: the power cut below is one before the flush.
	var readTxn *badger.Txn
	var reading *badger.Iterator
	var armed atomic.Bool
	h := *w.faults.Load()
	recorded := h.dbSync
	h.dbSync = func() error {
		if armed.CompareAndSwap(true, false) {
			// What badger has on disk if the power goes before it
			// flushes the memtable it is about to leave.
			copyBadgerTables(t, dir, tables)
			logsThen = badgerLogs(dir)
			readTxn = w.db.NewTransaction(false)
			reading = readTxn.NewIterator(badger.DefaultIteratorOptions)
			startNewMemtable(t, w)
		}
		return recorded()
	}
	injectFaults(w, &h)
	armed.Store(true)
	acked[2] = ackRec{1, mustAppend(t, w, sk(1), testEntry(2, 1<<10, 1), false)} // a new stream
	if armed.Load() {
		t.Fatal("the append was acknowledged without a sync of badger's files")
	}
	defer readTxn.Discard()
	defer reading.Close()

	// The power goes now, before badger's flush of the memtable it left
	// reached the disk.
	mu.Lock()
	crashed := img.cutCopy(tables, logsThen)
	mu.Unlock()
	verifyReopen(t, crashed, o, acked, map[int]int64{}, false)
}

// cutCopy builds, in a new directory, what a power loss now leaves of the
// running WAL p records, badger's flushes since tables were copied not
// done: the data files and badger's logs as the syncs left them (the logs
// there now and the ones in logsThen, put back or deleted by the cut),
// with the tables from the copy. The caller holds off the recorder.
func (p *powerImage) cutCopy(tables string, logsThen []string) string {
	t := p.t
	t.Helper()
	live := p.dir
	crashed := mkdir(t)
	if err := os.Mkdir(filepath.Join(crashed, dataDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range dataFileNames(filepath.Join(live, dataDirName)) {
		if err := copySparse(filepath.Join(live, dataDirName, n), filepath.Join(crashed, dataDirName, n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range append(logsThen, badgerLogs(live)...) {
		if err := os.WriteFile(filepath.Join(crashed, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyBadgerTables(t, tables, crashed)
	// No deleted data file comes back: the shadow links are the live
	// files, which a cut must not touch.
	shadow := p.shadow
	p.dir, p.shadow = crashed, ""
	defer func() { p.dir, p.shadow = live, shadow }()
	var c powerCut
	p.cutBadgerLogs(nil, nil, &c)
	p.cutDataFiles(rand.New(rand.NewPCG(1, 1)), &c)
	t.Logf("power cut: %+v", c)
	return crashed
}

// openRecorded opens a WAL in a new directory, with a 1 MiB memtable and
// value log (new ones are quick to start), and records its syncs in this process
// into img; mu is held while img takes a report. The WAL is closed at
// the test's end.
func openRecorded(t *testing.T) (w *WAL, o Options, img *powerImage, mu *sync.Mutex) {
	dir := mkdir(t)
	o = testOptions(t)
	o.MemTableSize, o.ValueLogFileSize = 1<<20, 1<<20
	w = openTest(t, dir, o)
	t.Cleanup(func() { w.Close() })
	img = newPowerImage(t, dir)
	img.startRound()
	mu = &sync.Mutex{} // the recorder reports from the syncer's goroutines
	recordSyncs(w, img.copies, func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		img.onLine(strings.Fields(fmt.Sprintf(format, a...)))
	})
	return w, o, img, mu
}

// copyBadgerTables copies badger's files other than its logs (tables,
// MANIFEST, KEYREGISTRY, DISCARD) from one directory to another.
func copyBadgerTables(t *testing.T, from, to string) {
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Error(err)
		return
	}
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasSuffix(n, ".mem") || strings.HasSuffix(n, ".vlog") {
			continue
		}
		if err := copySparse(filepath.Join(from, n), filepath.Join(to, n)); err != nil {
			t.Error(err)
		}
	}
}

// startNewMemtable writes rows of its own (under a tag the WAL does not
// use) until badger starts a new memtable log.
func startNewMemtable(t *testing.T, w *WAL) {
	old := newestBadgerLogs(w.dir)[0]
	val := bytes.Repeat([]byte{'j'}, 200) // under valueThreshold: in the memtable
	for i := range 200 {
		err := w.db.Update(func(txn *badger.Txn) error {
			for j := range 500 {
				if err := txn.Set(fmt.Appendf(nil, "~filler%08d", i*500+j), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
			return
		}
		if newestBadgerLogs(w.dir)[0] != old {
			return
		}
	}
	t.Error("badger started no new memtable")
}

// TestOpenMakesNewDirectoriesDurable: Open of a directory that does not
// exist creates it (and its missing parents) and must fsync the parent of
// each, or a power loss soon after the first start can take the whole
// WAL, acknowledged entries and all: the WAL's own fsyncs (the data
// directory, badger's) make only the names inside it durable.
func TestOpenMakesNewDirectoriesDurable(t *testing.T) {
	root := mkdir(t)
	dir := filepath.Join(root, "a", "b", "wal")
	var mu sync.Mutex
	synced := map[string]bool{}
	record := func(d string) {
		mu.Lock()
		defer mu.Unlock()
		synced[d] = true
	}
	dirSynced.Store(&record)
	defer dirSynced.Store(nil)
	w := openTest(t, dir, testOptions(t))
	mustAppend(t, w, sk(0), testEntry(1, 1<<10, 1), false)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b")} {
		if !synced[d] {
			t.Errorf("%s not fsynced after Open created a directory in it (fsynced: %v)", d, slices.Sorted(maps.Keys(synced)))
		}
	}
}

// TestPowerLossDuringSyncAfterMemtableRotated: the index rows of
// acknowledged entries are written after their sync and not synced (the
// frames are replayed from the checkpoint); badger then starts a new
// memtable, more rows go there, with the stream's metadata and the
// checkpoint past the first ones. The next sync of badger's files must
// make the left log durable no later than the new one: a power loss
// between the two keeps the new log's checkpoint and metadata without the
// rows before them, and recovery, starting from that checkpoint, never
// indexes the first entries again.
func TestPowerLossDuringSyncAfterMemtableRotated(t *testing.T) {
	w, o, img, mu := openRecorded(t)
	dir := w.dir
	acked := map[uint64]ackRec{}
	acked[1] = ackRec{0, mustAppend(t, w, sk(0), testEntry(1, 1<<10, 1), false)}
	waitIndexed(t, w) // its index rows: in the memtable's log, not synced

	// As in TestPowerLossMemtableRotatedDuringSync, a read keeps the left
	// log on disk, and the tables are the ones before badger's flush.
	tables := mkdir(t)
	copyBadgerTables(t, dir, tables)
	logsThen := badgerLogs(dir)
	readTxn := w.db.NewTransaction(false)
	reading := readTxn.NewIterator(badger.DefaultIteratorOptions)
	defer readTxn.Discard()
	defer reading.Close()
	startNewMemtable(t, w)
	acked[2] = ackRec{0, mustAppend(t, w, sk(0), testEntry(2, 1<<10, 1), false)}
	waitIndexed(t, w) // in the new log: metadata and checkpoint past entry 1

	// The file system has committed the new log's name (ext4 does every
	// 5 s), and the power goes during the next sync of badger's files,
	// once DB.Sync has returned.
	mu.Lock()
	for _, n := range badgerLogs(dir) {
		img.logSafe[n] = true
	}
	mu.Unlock()
	var crashed string
	h := *w.faults.Load()
	recorded := h.dbSync
	h.dbSync = func() error {
		err := recorded()
		if crashed == "" {
			mu.Lock()
			crashed = img.cutCopy(tables, logsThen)
			mu.Unlock()
		}
		return err
	}
	injectFaults(w, &h)
	mustAppend(t, w, sk(1), testEntry(3, 1<<10, 1), false) // a new stream: badger is synced
	if crashed == "" {
		t.Fatal("no sync of badger's files")
	}
	verifyReopen(t, crashed, o, acked, map[int]int64{}, false)
}

// TestPowerLossAfterValueLogGC: Reclaim's value-log GC rewrites the live
// dead letters of a mostly dropped value log into the current one and
// deletes the old file (badger v4.9.6 value.go, valueLog.rewrite: "Entries
// written to LSM. Remove the older file now."). With SyncWrites off the
// rewrites are not synced, and the unlink reaches the disk with the next
// journal commit: a power loss before badger's files are next synced
// loses the dead letters still stored, which were stored synced.
func TestPowerLossAfterValueLogGC(t *testing.T) {
	w, o, img, mu := openRecorded(t)
	// 2 MiB of dead letters: the first 20 or so fill the first value
	// log; 3 in 4 of those are dropped, the others kept.
	const letters = 40
	kept := map[uint64]bool{}
	for i := range letters {
		id, err := w.DeadLetter(sk(0), testEntry(uint64(i), 50<<10, 1), "refused")
		if err != nil {
			t.Fatal(err)
		}
		kept[id] = i%4 == 0 || i >= letters/2
	}
	flushTables(t, w, 0) // the letters in a table
	for id, keep := range kept {
		if !keep {
			if err := w.Drop(id); err != nil {
				t.Fatal(err)
			}
			delete(kept, id)
		}
	}
	// badger counts what a value log holds of dead values when it
	// compacts; four tables in level 0 start a compaction.
	for i := 1; i <= 4; i++ {
		flushTables(t, w, i)
	}
	if err := w.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	res, err := w.Reclaim()
	if err != nil || res.GCRewrites == 0 {
		t.Fatalf("reclaim: %+v, %v: no value log rewritten", res, err)
	}
	if slices.Contains(badgerLogs(w.dir), "000001.vlog") {
		t.Fatal("the rewritten value log is still there after Reclaim")
	}
	tables := mkdir(t)
	copyBadgerTables(t, w.dir, tables) // badger synced its tables itself
	mu.Lock()
	crashed := img.cutCopy(tables, nil)
	mu.Unlock()
	o.Logger = testLogger(t)
	w2 := openTest(t, crashed, o)
	defer w2.Close()
	got := 0
	for dl, err := range w2.DeadLetters() {
		if err != nil {
			t.Errorf("dead letter after the power cut: %v", err)
			continue
		}
		if _, err := checkPayload(dl.Entry.Data); err != nil || !kept[dl.ID] {
			t.Errorf("dead letter %d: %v (stored: %v)", dl.ID, err, kept[dl.ID])
		}
		got++
	}
	if got != len(kept) {
		t.Fatalf("%d dead letters readable after the power cut, %d were stored", got, len(kept))
	}
}

// flushTables makes badger flush its memtables to tables: a DropPrefix of
// a row of its own (under a tag the WAL does not use) does that.
func flushTables(t *testing.T, w *WAL, i int) {
	t.Helper()
	key := []byte{'~', byte(i)}
	if err := w.db.Update(func(txn *badger.Txn) error { return txn.Set(key, []byte("x")) }); err != nil {
		t.Fatal(err)
	}
	if err := w.db.DropPrefix(key); err != nil {
		t.Fatal(err)
	}
}
