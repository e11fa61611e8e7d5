package wal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The crash test runs the WAL in a child process (this test binary,
// re-executed into TestHelperProcess), SIGKILLs it while many goroutines
// append, and checks in the parent that every acknowledged append survived.

const crashEnvDir, crashEnvRound, crashEnvKill = "WAL_CRASH_DIR", "WAL_CRASH_ROUND", "WAL_CRASH_KILL"

func crashOptions() Options {
	return Options{
		EncryptionKey:    testKey,
		Sync:             SyncBatch,
		SegmentBytes:     1 << 20,
		ValueLogFileSize: 4 << 20,
		ReclaimInterval:  100 * time.Millisecond, // kills also land during reclaim
	}
}

// TestHelperProcess is the child: it appends until killed, printing
// "A <partition> <offset> <id>" for each acknowledged append and
// "C <partition> <next>" after each returned Commit of a reader: stream
// 0's, or with crashEnvKill (the reclaim crash test) every stream's, and
// it then runs Reclaim itself and kills itself at the step given there
// (see armReclaimKill). With crashEnvPower (the power-loss test) every
// stream's reader commits too, dead letters come and go
// (churnDeadLetters), and the child reports what each sync made durable
// (recordSyncs).
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("helper process for TestCrash")
	}
	round, _ := strconv.Atoi(os.Getenv(crashEnvRound))
	killAt := os.Getenv(crashEnvKill)
	o, readers, maxEntry := crashOptions(), 1, 64<<10
	if killAt != "" {
		o, readers, maxEntry = reclaimCrashOptions(), 4, 8<<10
	}
	powerCopies := os.Getenv(crashEnvPower)
	if powerCopies != "" {
		o, readers, maxEntry = powerOptions(), 4, 16<<10
	}
	w, err := Open(dir, o)
	if err != nil {
		fmt.Printf("E open: %v\n", err)
		os.Exit(3)
	}
	var outMu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	emit := func(format string, a ...any) {
		outMu.Lock()
		fmt.Fprintf(out, format, a...)
		out.Flush() // one write per line: a kill never tears a printed ack
		outMu.Unlock()
	}
	emit("R %d\n", round)
	if powerCopies != "" {
		recordSyncs(w, powerCopies, emit) // before the first append
		go churnDeadLetters(w, round, emit)
	}
	var paused atomic.Bool // appends wait while set
	if killAt != "" {
		armReclaimKill(w, killAt, emit, &paused)
	}
	lazy := os.Getenv(crashEnvPowerLazy) == "1"
	for part := range readers {
		go consumeCommitting(w, part, emit, lazy)
	}
	for g := range 16 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(round), uint64(g)))
			for i := 0; ; i++ {
				for paused.Load() {
					time.Sleep(time.Millisecond)
				}
				id := uint64(round)<<40 | uint64(g)<<24 | uint64(i)
				part := rng.IntN(4)
				e := testEntry(id, 16+rng.IntN(maxEntry), int32(1+rng.IntN(5)))
				done := make(chan struct{})
				w.Append(sk(part), e, false, func(off int64, err error) {
					if err != nil {
						emit("E append: %v\n", err)
					} else {
						emit("A %d %d %d\n", part, off, id)
					}
					close(done)
				})
				if i%4 == 3 {
					<-done // mostly several in flight per goroutine
				}
			}
		}()
	}
	select {}
}

// consumeCommitting reads partition part's stream and commits after each
// read, printing "C <part> <next>" once a Commit returned; lazy, it
// commits with CommitAsync instead, as the shardwriter does, and prints
// nothing (the position is not durable when it returns).
func consumeCommitting(w *WAL, part int, emit func(string, ...any), lazy bool) {
	r, err := w.Reader(sk(part))
	for err != nil {
		time.Sleep(5 * time.Millisecond)
		r, err = w.Reader(sk(part))
	}
	for {
		es, err := r.Read(context.Background(), 1<<20, 50)
		if err != nil {
			emit("E read: %v\n", err)
			return
		}
		last := es[len(es)-1]
		next := last.BaseOffset + int64(last.Records)
		if lazy {
			if err := r.CommitAsync(next); err != nil {
				emit("E commit: %v\n", err)
				return
			}
			continue
		}
		if err := r.Commit(next); err != nil {
			emit("E commit: %v\n", err)
			return
		}
		emit("C %d %d\n", part, next)
	}
}

type ackRec struct {
	part int
	off  int64
}

// crashLog is what the parent learnt from its children: the acknowledged
// appends and the highest returned Commit of each partition, over all
// rounds in one directory.
type crashLog struct {
	t         *testing.T
	dir       string
	acked     map[uint64]ackRec // id → where
	byOffset  map[ackRec]uint64 // (part, off) → id
	committed map[int]int64     // part → highest printed commit
}

func newCrashLog(t *testing.T) *crashLog {
	return &crashLog{t: t, dir: mkdir(t), acked: map[uint64]ackRec{}, byOffset: map[ackRec]uint64{}, committed: map[int]int64{}}
}

// runChild starts round's child with env added, records its acks and
// commits, and passes every other line to onLine. onAck, after each ack,
// and onLine may kill the child; a child alive after 60 s is killed too.
// It returns once the child is gone, with its acks and how it ended.
func (l *crashLog) runChild(round int, env []string, onAck func(acks int) bool, onLine func(f []string)) (int, *os.ProcessState) {
	t := l.t
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+l.dir, crashEnvRound+"="+strconv.Itoa(round))
	cmd.Env = append(cmd.Env, env...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { cmd.Process.Signal(syscall.SIGKILL) }
	timer := time.AfterFunc(60*time.Second, kill)
	defer timer.Stop()
	sc := bufio.NewScanner(stdout)
	acks := 0
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) == 4 && f[0] == "A":
			part, _ := strconv.Atoi(f[1])
			off, _ := strconv.ParseInt(f[2], 10, 64)
			id, _ := strconv.ParseUint(f[3], 10, 64)
			rec := ackRec{part, off}
			if prev, dup := l.byOffset[rec]; dup {
				t.Fatalf("round %d: offset %d of partition %d acknowledged twice (ids %x, %x): offsets went back", round, off, part, prev, id)
			}
			l.acked[id] = rec
			l.byOffset[rec] = id
			acks++
			if onAck != nil && onAck(acks) {
				kill()
			}
		case len(f) == 3 && f[0] == "C":
			part, _ := strconv.Atoi(f[1])
			next, _ := strconv.ParseInt(f[2], 10, 64)
			l.committed[part] = max(l.committed[part], next)
		case len(f) > 0 && f[0] == "E":
			t.Errorf("child: %s", line)
		case len(f) == 2 && f[0] == "R":
		default:
			// a line cut by the kill cannot be an ack: acks are
			// written whole before they are counted
			if onLine != nil {
				onLine(f)
			}
		}
	}
	io.Copy(io.Discard, stdout)
	cmd.Wait()
	return acks, cmd.ProcessState
}

func TestCrash(t *testing.T) {
	killAfter := []int{1, 150, 700, 2000, 4000}
	if testing.Short() || raceEnabled {
		killAfter = []int{1, 100, 500}
	}
	l := newCrashLog(t)
	testStart := time.Now()
	for round, n := range killAfter {
		killed := false
		acks, _ := l.runChild(round+1, nil, func(acks int) bool {
			killed = killed || acks == n
			return acks == n
		}, nil)
		if !killed {
			t.Fatalf("round %d: child exited before %d acks", round, n)
		}
		t.Logf("[%v] round %d: killed after %d acks (%d acknowledged in all, stream 0 committed at %d)", time.Since(testStart).Round(time.Millisecond), round, acks, len(l.acked), l.committed[0])
		verifyCrash(t, l.dir, crashOptions(), l.acked, l.committed)
	}
}

// verifyCrash reopens the WAL and checks every acknowledged entry not below
// its stream's committed position is there exactly once and intact.
func verifyCrash(t *testing.T, dir string, o Options, acked map[uint64]ackRec, committed map[int]int64) {
	t.Helper()
	verifyReopen(t, dir, o, acked, committed, false)
}

// verifyReopen is verifyCrash; with gaps, a gap in a stream's offsets
// (frames a power loss took, see readWaiting) does not fail the test:
// the entries in it were never acknowledged, or they are missing. It
// returns where it found each entry not below its committed position.
func verifyReopen(t *testing.T, dir string, o Options, acked map[uint64]ackRec, committed map[int]int64, gaps bool) map[uint64]ackRec {
	t.Helper()
	o.ReclaimInterval = -1
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	start := time.Now()
	w, err := Open(dir, o)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer w.Close()
	openTook := time.Since(start)
	found := map[uint64]ackRec{}
	for part := range 4 {
		k := sk(part)
		r, err := w.Reader(k)
		if err != nil {
			continue // nothing acknowledged there yet
		}
		if c := r.Committed(); c < committed[part] {
			t.Fatalf("partition %d: committed %d after restart, a Commit to %d had returned", part, c, committed[part])
		}
		// The child may have committed further than it printed before the
		// kill: what lies below the persisted position is consumed.
		committed[part] = r.Committed()
		next := r.Committed()
		for _, e := range readWaiting(t, r, 0, gaps) {
			if e.BaseOffset < next {
				t.Fatalf("partition %d: offset %d after %d", part, e.BaseOffset, next)
			}
			next = e.BaseOffset + int64(e.Records)
			id, err := checkPayload(e.Data)
			if err == nil && !bytes.Equal(e.Data, payload(id, len(e.Data))) {
				err = fmt.Errorf("payload of id %x differs from what was appended", id)
			}
			if err != nil {
				t.Fatalf("partition %d offset %d: %v", part, e.BaseOffset, err)
			}
			if prev, dup := found[id]; dup {
				t.Fatalf("id %x twice: %v and %d/%d", id, prev, part, e.BaseOffset)
			}
			found[id] = ackRec{part, e.BaseOffset}
			if e.Credential.AccessKeySecret != testSecret {
				t.Fatalf("secret not restored")
			}
		}
		r.Close()
	}
	missing := 0
	for id, rec := range acked {
		if rec.off < committed[rec.part] {
			continue // consumed (and maybe reclaimed)
		}
		got, ok := found[id]
		if !ok {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged id %x at %d/%d missing after restart", id, rec.part, rec.off)
			}
			continue
		}
		if got != rec {
			t.Errorf("id %x acknowledged at %v, found at %v", id, rec, got)
		}
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged entries lost", missing)
	}
	t.Logf("reopened in %v: %d entries readable, all acknowledged ones among them", openTook.Round(time.Millisecond), len(found))
	return found
}

// A crash between badger's creation of a memtable or value log and its
// sizing leaves a 0-byte *.mem or *.vlog file, on which badger's Open
// fails ("Create a new file"). Open removes it: the WAL opens, with every
// entry.
func TestOpenWithEmptyBadgerLog(t *testing.T) {
	for _, ext := range []string{".mem", ".vlog"} {
		t.Run(ext, func(t *testing.T) { openWithEmptyLog(t, ext) })
	}
}

func openWithEmptyLog(t *testing.T, ext string) {
	dir := mkdir(t)
	o := testOptions(t)
	w := openTest(t, dir, o)
	for i := range 3 {
		mustAppend(t, w, sk(0), testEntry(uint64(i), 1<<10, 1), true)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ext); ok {
			fid, _ := strconv.Atoi(n)
			last = max(last, fid)
		}
	}
	empty := filepath.Join(dir, fmt.Sprintf("%06d%s", last+1, ext))
	if ext == ".mem" {
		empty = filepath.Join(dir, fmt.Sprintf("%05d%s", last+1, ext))
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err = Open(dir, o)
	if err != nil {
		t.Fatalf("Open with an empty %s file: %v", ext, err)
	}
	defer w.Close()
	r, err := w.Reader(sk(0))
	if err != nil {
		t.Fatal(err)
	}
	if es := readAll(t, r); len(es) != 3 {
		t.Fatalf("read %d entries after reopening, want 3", len(es))
	}
}
