package wal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The reclaim crash test kills the WAL inside Reclaim: between the deletion
// of consumed data files and their 'f' rows, around badger's DropPrefix
// (which blocks writes, flushes the memtables to new tables, starts a new
// memtable, and records the tables it adds and drops in the MANIFEST) and
// before the segment rows go. TestCrash's kills are timed
// by acks and land in Reclaim only by chance.

// reclaimCrashOptions make Reclaim busy: small data files and segments, so
// that each Reclaim has files to delete and prefixes to drop, and a small
// memtable, so that badger also flushes on its own.
func reclaimCrashOptions() Options {
	o := crashOptions()
	o.DataFileBytes = 256 << 10
	o.SegmentBytes = 32 << 10
	o.MemTableSize = 1 << 20
	o.ReclaimInterval = -1 // the child runs Reclaim itself, see armReclaimKill
	return o
}

// armReclaimKill, in the child, runs Reclaim every 5 ms (printing
// "E reclaim: …" on failure), pauses the appends 20 ms in every 50 (so
// that the readers catch up, and Reclaim also drops the segments being
// written, rolling them), keeps a slow read going and SIGKILLs the process at killAt:
// "<step> <n> <delay>", the n-th time Reclaim reaches step (one of
// reclaimSteps), delay (a time.Duration) after it — at once, inside the
// step's hook, for 0. It prints "K <step> <n> <delay>" when it arms the
// kill and "X <step>" with the last step reached when it kills. The child
// kills itself, rather than the parent after reading a line, so that a
// kill at delay 0 lands exactly at the step.
func armReclaimKill(w *WAL, killAt string, emit func(string, ...any), paused *atomic.Bool) {
	var step, ds string
	var n int
	_, err := fmt.Sscanf(killAt, "%s %d %s", &step, &n, &ds)
	delay, derr := time.ParseDuration(ds)
	if err = errors.Join(err, derr); err != nil {
		emit("E kill spec %q: %v\n", killAt, err)
		return
	}
	seen := 0             // Reclaim calls are serialised, and so are the hook's calls
	var last atomic.Value // the last step reached
	kill := func() {
		emit("X %s\n", last.Load()) // where the kill landed
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	injectFaults(w, &faultHooks{reclaimStep: func(s string) {
		last.Store(s)
		if s != step {
			return
		}
		if seen++; seen != n {
			return
		}
		emit("K %s %d %v\n", step, n, delay)
		if delay == 0 {
			kill()
			select {} // the signal is on its way
		}
		time.AfterFunc(delay, kill)
	}})
	go func() {
		for {
			time.Sleep(30 * time.Millisecond)
			paused.Store(true)
			time.Sleep(20 * time.Millisecond)
			paused.Store(false)
		}
	}()
	go func() {
		// A slow read: it holds badger's memtables for up to 30 ms at a
		// time, as a read on a busy disk would, across some of the drops.
		for i := 0; ; i++ {
			txn := w.db.NewTransaction(false)
			it := txn.NewIterator(badger.DefaultIteratorOptions)
			time.Sleep(time.Duration(i%31) * time.Millisecond)
			it.Close()
			txn.Discard()
		}
	}()
	go func() {
		for {
			time.Sleep(5 * time.Millisecond)
			if _, err := w.Reclaim(); err != nil {
				emit("E reclaim: %v\n", err)
				return
			}
		}
	}()
}

// TestCrashDuringReclaim kills the child at a random step of Reclaim
// (reclaimSteps), at its 1st to 3rd Reclaim that reaches the step, at
// once, 0–2 ms or 0–50 ms after the step (a third each), many rounds in one
// directory. After each kill the WAL must open, with every acknowledged
// entry not committed past readable, byte for byte, exactly once, and no
// committed position gone back (verifyCrash); at the end, everything
// consumed and reclaimed leaves no index row and no data file
// (checkAllReclaimed). About 15 s (12 rounds under -short or -race);
// SLSRELAY_LONG_TESTS=1 runs 400 rounds.
func TestCrashDuringReclaim(t *testing.T) {
	rounds, budget := crashRounds(200, 12, 400)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	l := newCrashLog(t)
	kills := map[string]int{} // step armed → kills
	after := map[string]int{} // last step reached when killed → kills
	start := time.Now()
	round := 0
	for ; round < rounds && time.Since(start) < budget; round++ {
		step := reclaimSteps[rng.IntN(len(reclaimSteps))]
		n := 1 + rng.IntN(3)
		var delay time.Duration // at once, within badger's work, or later
		switch rng.IntN(3) {
		case 1:
			delay = time.Duration(rng.Int64N(int64(2 * time.Millisecond)))
		case 2:
			delay = time.Duration(rng.Int64N(int64(50 * time.Millisecond)))
		}
		spec := fmt.Sprintf("%s %d %v", step, n, delay)
		armed, landed := false, "?"
		acks, ps := l.runChild(round+1, []string{crashEnvKill + "=" + spec}, nil, func(f []string) {
			armed = armed || len(f) == 4 && f[0] == "K"
			if len(f) == 2 && f[0] == "X" {
				landed = f[1]
			}
		})
		if !armed {
			t.Fatalf("round %d (%s): the child ended (%v) before reaching the step", round, spec, ps)
		}
		if ws, ok := ps.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d (%s): the child ended with %v, not killed", round, spec, ps)
		}
		kills[step]++
		after[landed]++
		t.Logf("[%v] round %d: killed at %s, after step %s (%d acks)", time.Since(start).Round(time.Millisecond), round, spec, landed, acks)
		verifyCrash(t, l.dir, reclaimCrashOptions(), l.acked, l.committed)
	}
	t.Logf("%d kills in Reclaim, by step armed: %v; by the last step reached at the kill: %v", round, kills, after)
	checkAllReclaimed(t, l.dir)
}

// crashRounds says how many rounds a crash test runs, and for how long at
// most: normal in 15 s, short under -short or -race, long in an hour with
// SLSRELAY_LONG_TESTS=1.
func crashRounds(normal, short, long int) (int, time.Duration) {
	switch {
	case os.Getenv("SLSRELAY_LONG_TESTS") == "1":
		return long, time.Hour
	case testing.Short() || raceEnabled:
		return short, 15 * time.Second
	}
	return normal, 15 * time.Second
}

// checkAllReclaimed opens the WAL, consumes every stream and reclaims: no
// index row ('e', 'g') and no data file with frames may be left, whatever
// the kills interrupted (a row a kill left out of every segment would
// never be dropped).
func checkAllReclaimed(t *testing.T, dir string) {
	t.Helper()
	o := reclaimCrashOptions()
	o.Logger = testLogger(t)
	w := openTest(t, dir, o)
	defer w.Close()
	consumeAll(t, w)
	if _, err := w.Reclaim(); err != nil {
		t.Fatalf("reclaim: %v", err)
	}
	rows := map[byte]int{}
	err := w.db.View(func(txn *badger.Txn) error {
		for _, tag := range []byte{tagEntry, tagSegment} {
			err := scanPrefix(txn, []byte{tag}, false, func([]byte, []byte) error {
				rows[tag]++
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files := dataFileNums(t, dir)
	t.Logf("all consumed and reclaimed: %d entry rows, %d segment rows, data files %v", rows[tagEntry], rows[tagSegment], files)
	if rows[tagEntry] > 0 || rows[tagSegment] > 0 || len(files) > 0 {
		t.Errorf("left after consuming everything and reclaiming: %d entry rows, %d segment rows, data files %v", rows[tagEntry], rows[tagSegment], files)
	}
}

// TestRowsADropBroughtBackAreDropped: a read that began before Reclaim's
// DropPrefix keeps the old memtable's log file (*.mem) on disk after the
// drop (see orphanSegments); a crash then brings the dropped rows back,
// with no segment row to have them dropped again. Open finds them and the
// next Reclaim drops them. The crash is a copy of the live WAL's files:
// what a SIGKILL leaves (every write, mmap'd ones included, is in the page
// cache).
func TestRowsADropBroughtBackAreDropped(t *testing.T) {
	dir := mkdir(t)
	o := reclaimCrashOptions()
	o.Logger = testLogger(t)
	w := openTest(t, dir, o)
	for i := range 40 {
		mustAppend(t, w, sk(0), testEntry(uint64(i), 4<<10, 1), false)
	}
	consumeAll(t, w)
	txn := w.db.NewTransaction(false)
	it := txn.NewIterator(badger.DefaultIteratorOptions) // a read in progress
	if res, err := w.Reclaim(); err != nil || res.Segments == 0 {
		t.Fatalf("reclaim: %+v, %v", res, err)
	}
	crashed := filepath.Join(mkdir(t), "crashed")
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	it.Close()
	txn.Discard()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkAllReclaimed(t, crashed)
}
