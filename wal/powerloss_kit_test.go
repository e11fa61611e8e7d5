package wal

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The power-loss kit. A power loss keeps what was fdatasync'd or fsync'd
// and may lose everything else; the test makes that observable without a
// block device of its own. In the process running the WAL, a syncRecorder
// (through the WAL's observer hooks, faultHooks) reports each sync: the
// size a data file had before its fdatasync, the new data files whose
// directory entry was fsync'd, a copy of each of badger's logs (*.mem,
// *.vlog) taken just after it was synced, and the badger log names a
// directory fsync made durable. In the parent a powerImage reads those
// reports and, after the SIGKILL, cuts the power: it turns the directory
// into what the disk could hold (see powerImage.cut). The reports are
// lines on the child's stdout, written before the acknowledgements that
// depend on them, so the parent never credits less than what an ack it
// read relied on.

const (
	crashEnvPower     = "WAL_POWER_COPIES" // the directory for the copies of synced badger logs
	crashEnvPowerLazy = "WAL_POWER_LAZY"   // "1": the readers commit with CommitAsync
)

// powerOptions are crashOptions that turn over quickly: small data files
// and segments (new files, deletions, drops) and a small memtable and
// value log (badger starts new logs, and flushes).
func powerOptions() Options {
	o := crashOptions()
	o.DataFileBytes = 512 << 10
	o.SegmentBytes = 64 << 10
	o.MemTableSize = 1 << 20
	o.ValueLogFileSize = 1 << 20
	o.ReclaimInterval = 50 * time.Millisecond
	return o
}

// syncRecorder reports what the WAL's syncs made durable, in the process
// that runs the WAL. Its methods run on the syncer's goroutines.
type syncRecorder struct {
	w      *WAL
	copies string // where the copies of synced badger logs go
	emit   func(format string, a ...any)
	seq    atomic.Int64
}

// recordSyncs starts reporting w's syncs, as lines through emit:
//
//	PS <data file> <size>   fdatasync'd with at least size bytes
//	PN <data file>          its directory entry is durable
//	PM <badger log> <copy>  copy holds the log's content after a sync of it
//	PD <badger log>...      the names are durable (directory fsync'd)
//
// It first reports every badger log as durable, copied as it is (what
// Open left: its replay synced badger). Call it before any append.
func recordSyncs(w *WAL, copies string, emit func(string, ...any)) {
	r := &syncRecorder{w: w, copies: copies, emit: emit}
	names := badgerLogs(w.dir)
	for _, n := range names {
		r.copyLog(n)
	}
	emit("PD %s\n", strings.Join(names, " "))
	injectFaults(w, &faultHooks{
		dataSynced:       func(path string, size int64) { emit("PS %s %d\n", filepath.Base(path), size) },
		dataFileDurable:  func(path string) { emit("PN %s\n", filepath.Base(path)) },
		dbSync:           r.dbSync,
		badgerFileSynced: r.copyLog,
		badgerDirSynced:  func(names []string) { emit("PD %s\n", strings.Join(names, " ")) },
	})
}

// dbSync runs badger's Sync and credits it with the logs it synced: the
// active memtable's log and the newest value log (badger v4.9.6 db.go,
// DB.Sync: db.mt.SyncWAL and vlog.sync of vlog.maxFid). Which file that
// was is known only when no new one appeared during the call: the newest
// before and after must be the same, or nothing is credited.
func (r *syncRecorder) dbSync() error {
	before := newestBadgerLogs(r.w.dir)
	if err := r.w.db.Sync(); err != nil {
		return err
	}
	after := newestBadgerLogs(r.w.dir)
	for _, n := range before {
		if slices.Contains(after, n) {
			r.copyLog(n)
		}
	}
	return nil
}

// copyLog copies badger log name, just synced, and reports the copy. A
// log deleted meanwhile is not reported (badger deletes a memtable's log
// once it is flushed to a table).
func (r *syncRecorder) copyLog(name string) {
	dst := filepath.Join(r.copies, fmt.Sprintf("%d-%s", r.seq.Add(1), name))
	if err := copySparse(filepath.Join(r.w.dir, name), dst); err != nil {
		os.Remove(dst)
		return
	}
	r.emit("PM %s %s\n", name, dst)
}

// badgerLogs lists badger's memtable and value logs in dir.
func badgerLogs(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".mem") || strings.HasSuffix(n, ".vlog") {
			out = append(out, n)
		}
	}
	return out
}

// newestBadgerLogs returns the newest memtable log and value log in dir.
func newestBadgerLogs(dir string) []string {
	var mem, vlog string
	for _, n := range badgerLogs(dir) {
		if strings.HasSuffix(n, ".mem") {
			mem = max(mem, n)
		} else {
			vlog = max(vlog, n)
		}
	}
	return []string{mem, vlog}
}

// copySparse copies src to dst (created), leaving holes where src reads
// as zeros: badger's logs are mapped at their full size and mostly empty.
func copySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := out.Truncate(fi.Size()); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	zero := make([]byte, len(buf))
	for off := int64(0); off < fi.Size(); {
		n, err := in.ReadAt(buf, off)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
		}
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// powerImage is the parent's record of what the child's syncs made
// durable (recordSyncs' lines), and the power cut that applies it.
type powerImage struct {
	t       *testing.T
	dir     string // the WAL's
	copies  string // the child's copies of synced badger logs
	shadow  string // hard links of data files with a durable name, to bring deleted ones back
	synced  map[string]int64
	durable map[string]bool   // data files
	logCopy map[string]string // badger log → copy of its synced content
	logSafe map[string]bool   // badger logs with a durable name
}

func newPowerImage(t *testing.T, dir string) *powerImage {
	return &powerImage{t: t, dir: dir, copies: mkdir(t), shadow: mkdir(t)}
}

func (p *powerImage) dataDir() string { return filepath.Join(p.dir, dataDirName) }

// startRound records the directory as it is before a child starts: what
// the last power cut left is on disk.
func (p *powerImage) startRound() {
	t := p.t
	for _, d := range []string{p.copies, p.shadow} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	p.synced, p.durable = map[string]int64{}, map[string]bool{}
	p.logCopy, p.logSafe = map[string]string{}, map[string]bool{}
	for _, name := range dataFileNames(p.dataDir()) {
		fi, err := os.Stat(filepath.Join(p.dataDir(), name))
		if err != nil {
			t.Fatal(err)
		}
		p.synced[name] = fi.Size()
		p.fileDurable(name)
	}
}

func (p *powerImage) fileDurable(name string) {
	p.durable[name] = true
	// Linked, not copied: the cut brings back the file's first synced
	// bytes, which the child never rewrites.
	os.Link(filepath.Join(p.dataDir(), name), filepath.Join(p.shadow, name))
}

// onLine takes a recordSyncs line; it reports whether it was one.
func (p *powerImage) onLine(f []string) bool {
	if len(f) == 0 {
		return false
	}
	switch {
	case f[0] == "PS" && len(f) == 3:
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			p.t.Fatalf("bad line %q", f)
		}
		p.synced[f[1]] = max(p.synced[f[1]], size)
	case f[0] == "PN" && len(f) == 2:
		p.fileDurable(f[1])
	case f[0] == "PM" && len(f) == 3:
		if old := p.logCopy[f[1]]; old != "" {
			os.Remove(old)
		}
		p.logCopy[f[1]] = f[2]
	case f[0] == "PD":
		for _, n := range f[1:] {
			p.logSafe[n] = true
		}
	default:
		return false
	}
	return true
}

// powerCut counts what a cut did.
type powerCut struct {
	BadgerKept   bool // badger's logs left as the kill left them
	LogsKept     int  // badger logs left as the kill left them (written back by the kernel)
	LogsReverted int  // badger logs put back to their last synced content
	LogsTorn     int  // of those, the ones that keep some later writes
	LogsGone     int  // badger logs never synced, or with no durable name
	FilesGone    int  // data files whose name was not durable (the one being started: empty)
	TornTails    int  // data files cut at, or past, their synced size
	FilesBack    int  // deleted data files back (unlink not durable)
}

// cut turns the directory into one a power loss at the kill could leave
// (the child is gone):
//
//   - badger's logs (*.mem, *.vlog), in 4 cuts of 5: each goes back to
//     its copy after its last sync; one never synced or whose name no
//     directory fsync covered is deleted; one put back keeps, in 2 cases
//     of 3, some of its later writes (up to a random page, or random
//     pages: a torn tail). In half of those cuts the
//     oldest few logs of each kind (a random number, maybe none or all)
//     keep every write instead: the kernel's writeback got that far, and
//     it writes back the files dirtied first first. In 1 cut of 5 they
//     all stay as the kill left them (every write reached the disk).
//   - each data file whose name no directory fsync covered is deleted;
//     one with bytes past its last fdatasync'd size gets one of: cut at
//     that size; cut at a random size past it (later writes partly on
//     disk); cut there with up to 8 KiB of garbage after it (a torn
//     write); a random 4 KiB page past it zeroed (written back out of
//     order).
//   - a data file deleted (by Reclaim) after its name was durable comes
//     back, cut at its synced size, in 1 of 2: the directory was not
//     fsync'd after the unlink.
//
// badger's tables, MANIFEST, KEYREGISTRY and DISCARD stay as they are:
// badger fsyncs them itself.
func (p *powerImage) cut(rng *rand.Rand) powerCut {
	var c powerCut
	c.BadgerKept = rng.IntN(5) == 0
	if !c.BadgerKept {
		var kept map[string]bool
		if rng.IntN(2) == 0 {
			kept = oldestLogs(rng, badgerLogs(p.dir))
		}
		p.cutBadgerLogs(rng, kept, &c)
	}
	p.cutDataFiles(rng, &c)
	return c
}

// oldestLogs picks, for each kind of badger log, the oldest few of names
// (a random number of them, from none to all).
func oldestLogs(rng *rand.Rand, names []string) map[string]bool {
	out := map[string]bool{}
	for _, ext := range []string{".mem", ".vlog"} {
		var kind []string
		for _, n := range names {
			if strings.HasSuffix(n, ext) {
				kind = append(kind, n)
			}
		}
		slices.Sort(kind) // badger numbers its logs in order
		for _, n := range kind[:rng.IntN(len(kind)+1)] {
			out[n] = true
		}
	}
	return out
}

// cutBadgerLogs puts each of badger's logs but the kept ones back to its
// last synced content, or deletes it (see cut). With rng, a log put back
// keeps in 1 case of 3 the later writes up to a random 4 KiB page, and in
// 1 of 3 each page the later writes changed on its own, in 1 case of 2.
func (p *powerImage) cutBadgerLogs(rng *rand.Rand, kept map[string]bool, c *powerCut) {
	t := p.t
	for _, name := range badgerLogs(p.dir) {
		path := filepath.Join(p.dir, name)
		if kept[name] {
			c.LogsKept++
			continue
		}
		if p.logSafe[name] && p.logCopy[name] != "" {
			var err error
			if rng == nil || rng.IntN(3) == 0 {
				err = copySparse(p.logCopy[name], path)
			} else {
				err = tearLog(rng, path, p.logCopy[name], rng.IntN(2) == 0)
				c.LogsTorn++
			}
			if err != nil {
				t.Fatalf("cannot put back %s: %v", name, err)
			}
			c.LogsReverted++
			continue
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		c.LogsGone++
	}
}

// tearLog turns badger log path, as the kill left it, into its synced
// content (the copy) with some of the later writes: the ones up to a
// random 4 KiB page, or, inOrder false, each changed page in 1 case of 2.
// The synced bytes are the same in both, so every mix keeps them.
func tearLog(rng *rand.Rand, path, synced string, inOrder bool) error {
	later, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := os.ReadFile(synced)
	if err != nil {
		return err
	}
	const page = 4096
	n := min(len(later), len(out))
	upTo := rng.IntN(n/page+1) * page
	for at := 0; at < n; at += page {
		end := min(at+page, n)
		if bytes.Equal(later[at:end], out[at:end]) {
			continue
		}
		if inOrder && at < upTo || !inOrder && rng.IntN(2) == 0 {
			copy(out[at:end], later[at:end])
		}
	}
	return os.WriteFile(path, out, 0o600)
}

// cutDataFiles deletes, tears and brings back data files (see cut).
func (p *powerImage) cutDataFiles(rng *rand.Rand, c *powerCut) {
	t := p.t
	live := dataFileNames(p.dataDir())
	for _, name := range live {
		path := filepath.Join(p.dataDir(), name)
		if !p.durable[name] {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			c.FilesGone++
			continue
		}
		if p.tearTail(rng, path, p.synced[name]) {
			c.TornTails++
		}
	}
	for _, name := range dataFileNames(p.shadow) {
		if slices.Contains(live, name) || rng.IntN(2) == 0 {
			continue
		}
		path := filepath.Join(p.dataDir(), name)
		if err := os.Link(filepath.Join(p.shadow, name), path); err != nil {
			t.Fatal(err)
		}
		p.tearTail(rng, path, p.synced[name])
		c.FilesBack++
	}
}

// tearTail cuts the file at path to what a power loss may leave of it
// when synced bytes are on disk; it reports whether it changed it.
func (p *powerImage) tearTail(rng *rand.Rand, path string, synced int64) bool {
	t := p.t
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	if size <= synced {
		return false // a recovery cut it, and synced the cut
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const page = 4096
	switch mode := rng.IntN(4); {
	case mode == 0:
		err = f.Truncate(synced)
	case mode == 1:
		err = f.Truncate(synced + rng.Int64N(size-synced))
	case mode == 2:
		if err = f.Truncate(synced); err == nil {
			junk := make([]byte, 1+rng.IntN(8<<10))
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			_, err = f.WriteAt(junk, synced)
		}
	default:
		first := (synced + page - 1) / page * page
		if first >= size {
			err = f.Truncate(synced)
			break
		}
		at := first + rng.Int64N((size-first+page-1)/page)*page
		_, err = f.WriteAt(make([]byte, min(page, size-at)), at)
	}
	if err != nil {
		t.Fatalf("cannot tear %s: %v", path, err)
	}
	return true
}

// dataFileNames lists the data files in dir.
func dataFileNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), dataFileExt) {
			out = append(out, e.Name())
		}
	}
	return out
}

// churnDeadLetters, in the child, stores a dead letter every 5 ms (4–16
// KiB: badger's value log) and, once more than 8 are stored (earlier
// rounds' included), drops or replays the oldest at each step, so that
// value logs fill and Reclaim's GC rewrites them. It prints "DL <id> <payload id> <partition>", "DX <id>"
// and "DR <id> <offset>" once each call returned, and "DP <id>" before
// it drops or replays one.
func churnDeadLetters(w *WAL, round int, emit func(string, ...any)) {
	rng := rand.New(rand.NewPCG(uint64(round), 99))
	var live []uint64 // the oldest first: those earlier rounds left too
	mine := map[uint64]bool{}
	for dl := range w.DeadLetters() {
		if dl != nil {
			live = append(live, dl.ID)
		}
	}
	for i := 0; ; i++ {
		time.Sleep(5 * time.Millisecond)
		pid := uint64(round)<<40 | 1<<39 | uint64(i)
		part := rng.IntN(4)
		id, err := w.DeadLetter(sk(part), testEntry(pid, 4<<10+rng.IntN(12<<10), 1), "churn")
		if err != nil {
			emit("E dead letter: %v\n", err)
			return
		}
		emit("DL %d %d %d\n", id, pid, part)
		mine[id] = true
		if live = append(live, id); len(live) <= 8 {
			continue
		}
		old := live[0]
		live = live[1:]
		// One of an earlier round may be unreadable (see
		// deadLog.verify): only dropped.
		drop := rng.IntN(2) == 0 || !mine[old]
		emit("DP %d %v\n", old, drop) // may be gone from here on
		if drop {
			if err := w.Drop(old); err != nil {
				emit("E drop: %v\n", err)
				return
			}
			emit("DX %d\n", old)
			continue
		}
		off, err := w.Replay(old)
		if err != nil {
			emit("E replay: %v\n", err)
			return
		}
		emit("DR %d %d\n", old, off)
	}
}

// deadRec is a dead letter the child stored: its payload's id and stream.
type deadRec struct {
	pid  uint64
	part int
}

// deadLog is what the parent learnt of the child's dead letters: stored,
// gone (dropped or replayed; each answered once synced), and pending (a
// Drop, true, or a Replay, false, called: maybe gone).
type deadLog struct {
	stored  map[uint64]deadRec
	gone    map[uint64]goneRec
	pending map[uint64]bool
}

func newDeadLog() *deadLog {
	return &deadLog{stored: map[uint64]deadRec{}, gone: map[uint64]goneRec{}, pending: map[uint64]bool{}}
}

// goneRec is a dead letter dropped or replayed: how, and its payload's id
// (0 if not known: one an earlier child stored and did not report).
type goneRec struct {
	why string
	pid uint64
}

// drop records dead letter id as gone.
func (d *deadLog) drop(id uint64, why string) {
	d.gone[id] = goneRec{why, d.stored[id].pid}
	delete(d.stored, id)
}

// onLine takes a churnDeadLetters line; a replayed letter becomes an
// acknowledged append of l. It reports whether it was one.
func (d *deadLog) onLine(t *testing.T, l *crashLog, f []string) bool {
	if len(f) < 2 || !strings.HasPrefix(f[0], "D") {
		return false
	}
	if f[0] == "DP" && len(f) == 3 {
		id, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("bad line %q", f)
		}
		d.pending[id] = f[2] == "true"
		return true
	}
	n := make([]uint64, len(f)-1)
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("bad line %q", f)
		}
		n[i] = v
	}
	switch {
	case f[0] == "DL" && len(n) == 3:
		d.stored[n[0]] = deadRec{n[1], int(n[2])}
		delete(d.gone, n[0]) // an id used again after the last one was dropped
	case f[0] == "DX" && len(n) == 1:
		d.drop(n[0], "dropped")
	case f[0] == "DR" && len(n) == 2:
		r, ok := d.stored[n[0]]
		if !ok {
			t.Fatalf("dead letter %d replayed, never stored", n[0])
		}
		d.drop(n[0], "replayed")
		rec := ackRec{r.part, int64(n[1])}
		l.acked[r.pid], l.byOffset[rec] = rec, r.pid
	default:
		return false
	}
	return true
}

// verify opens the WAL in dir and checks its dead letters: every stored
// one there, intact, none of the gone ones, and none both there and in
// its stream (found: where verifyReopen found each entry). A stored one
// whose Replay the kill interrupted after its frame was synced is in its
// stream instead (recovery finished the replay), maybe below the
// committed position already: its frame is in a data file.
func (d *deadLog) verify(t *testing.T, dir string, o Options, found map[uint64]ackRec) {
	t.Helper()
	o.ReclaimInterval = -1
	w, err := Open(dir, o)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer w.Close()
	seen := map[uint64]bool{}
	for dl, err := range w.DeadLetters() {
		if err != nil {
			if dl == nil || d.stored[dl.ID] != (deadRec{}) {
				t.Fatalf("dead letter: %v", err)
			}
			// One the kill interrupted: its row reached the disk, its
			// batch in the value log did not. Never acknowledged.
			t.Logf("dead letter %d, never stored, unreadable: %v", dl.ID, err)
			continue
		}
		seen[dl.ID] = true
		pid, err := checkPayload(dl.Entry.Data)
		if g, ok := d.gone[dl.ID]; ok && (err != nil || pid == g.pid) {
			// Not one whose DeadLetter the kill interrupted, given the
			// id again once the highest ids were gone.
			// One dropped used to come back after value-log GC (badger's
			// rewrite writing its old row back under its delete): fixed by
			// deleting such rows again, see deadletter_shadow.go.
			t.Fatalf("dead letter %d (payload %x) back after it was %s", dl.ID, g.pid, g.why)
		}
		if r, ok := d.stored[dl.ID]; ok && (err != nil || pid != r.pid || dl.Stream != sk(r.part)) {
			t.Fatalf("dead letter %d: payload %x of %v (%v), stored %x of %v", dl.ID, pid, dl.Stream, err, r.pid, sk(r.part))
		}
		if at, ok := found[pid]; ok && err == nil {
			t.Fatalf("dead letter %d (payload %x) both in the table and in its stream at %v", dl.ID, pid, at)
		}
	}
	framed := replayedPayloads(t, filepath.Join(dir, dataDirName))
	for id, r := range d.stored {
		switch _, replayed := found[r.pid]; {
		case seen[id]:
		case replayed, framed[r.pid] == id:
			d.drop(id, "replayed (by recovery)")
		case d.pending[id]: // a Drop; a Replay left its frame
			d.drop(id, "dropped (the kill came before Drop returned)")
		default:
			t.Fatalf("dead letter %d (payload %x) lost", id, r.pid)
		}
	}
	clear(d.pending) // the child that called them is gone
}

// replayedPayloads reads the data files in dir and returns, for each
// frame of a replayed dead letter, its payload's id and the dead
// letter's id.
func replayedPayloads(t *testing.T, dir string) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, name := range dataFileNames(dir) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for len(b) >= frameHeaderLen {
			h, err := decodeFrameHeader(b)
			if err != nil || int(h.bodyLen) > len(b)-frameHeaderLen {
				break // a torn tail
			}
			body := b[frameHeaderLen : frameHeaderLen+int(h.bodyLen)]
			b = b[frameHeaderLen+int(h.bodyLen):]
			if h.deadID == 0 {
				continue
			}
			if se, err := decodeEntry(body); err == nil {
				if pid, err := checkPayload(se.Entry.Data); err == nil {
					out[pid] = h.deadID
				}
			}
		}
	}
	return out
}
