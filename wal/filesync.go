package wal

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// fileSyncer makes a group commit durable. badger's DB.Sync alone does
// not: it syncs only the current value-log file and memtable log, and when
// a write fills a file badger moves on to the next without syncing the old
// one (unless SyncWrites), so the tail of the old file — acknowledged
// already — would sit unsynced in the page cache, lost on power failure.
// So the syncer fdatasyncs every log since the previous sync itself, in
// the order they were written (see sync), and runs DB.Sync after.
//
// fdatasync on a descriptor writes back the pages a shared mapping
// dirtied, as msync(MS_SYNC) does on Linux. Used by the syncer goroutine
// only.
type fileSyncer struct {
	dir      string
	files    map[string]*os.File
	lastVlog string // the newest value-log file at the last sync
	lastMem  string // the newest memtable log at the last sync
	known    map[string]bool
	// faults is the WAL's test hooks (badgerFileSynced, badgerDirSynced);
	// nil in tests that build a fileSyncer alone.
	faults *atomic.Pointer[faultHooks]
}

func (f *fileSyncer) hooks() *faultHooks {
	if f.faults == nil {
		return nil
	}
	return f.faults.Load()
}

func newFileSyncer(dir string) *fileSyncer {
	return &fileSyncer{dir: dir, files: map[string]*os.File{}, known: map[string]bool{}}
}

// sync makes everything written so far durable (see fileSyncer).
//
// It lists badger's logs, then fdatasyncs each one since the previous
// sync — the ones badger left and the active ones — one after the other,
// oldest first, value logs before memtable logs (a memtable entry may
// point into a value log), and runs DB.Sync last. A log badger starts
// after the listing holds only writes that came after the sync was asked
// for. The order matters for the rows the WAL never syncs on purpose (the
// index rows, lazy positions), which recovery trusts up to their
// checkpoint, written after them:
//
//   - DB.Sync syncs only the log active when it runs: run first, after a
//     write that started a new memtable, it made the new log durable and
//     left the old one, the newest in a listing taken before it, unsynced
//     with rows the acknowledgements depend on
//     (TestPowerLossMemtableRotatedDuringSync);
//   - a newer log made durable before an older one keeps, if the power
//     goes in between, a checkpoint without the rows before it, which
//     recovery then never indexes again
//     (TestPowerLossDuringSyncAfterMemtableRotated).
//
// DB.Sync then finds the logs clean, or syncs a newer one after the older
// ones, as the order needs; its ENOMEM (a mapping being remapped by a
// concurrent rotation) is no error here, every log being fdatasynced.
func (f *fileSyncer) sync(dbSync func() error) error {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return fmt.Errorf("cannot list %q: %w", f.dir, err)
	}
	var vlogs, mems []string // in name order, which is badger's order of creation
	newestVlog, newestMem, appeared := f.lastVlog, f.lastMem, false
	seen := make(map[string]bool, len(ents))
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasSuffix(n, ".mem") && n >= f.lastMem:
			newestMem = max(newestMem, n)
			mems = append(mems, n)
		case strings.HasSuffix(n, ".vlog") && n >= f.lastVlog:
			newestVlog = max(newestVlog, n)
			vlogs = append(vlogs, n)
		default:
			continue
		}
		seen[n] = true
		if !f.known[n] {
			appeared = true
		}
	}
	for _, n := range append(vlogs, mems...) {
		if err = f.fdatasync(n); err != nil {
			break
		}
	}
	if err == nil && appeared {
		if err = syncDir(f.dir); err == nil {
			if h := f.hooks(); h != nil && h.badgerDirSynced != nil {
				h.badgerDirSynced(slices.Collect(maps.Keys(seen)))
			}
		}
	}
	if err == nil {
		if err = dbSync(); errors.Is(err, unix.ENOMEM) {
			err = nil
		}
	}
	for n, fd := range f.files {
		if !seen[n] {
			fd.Close()
			delete(f.files, n)
		}
	}
	if err != nil {
		// The same files are tried again (for what it is worth: the WAL
		// stops appends after a failed sync of badger's files).
		return err
	}
	f.known, f.lastVlog, f.lastMem = seen, newestVlog, newestMem
	return nil
}

// fdatasync syncs badger's log name; one deleted meanwhile (badger deletes
// a memtable's log once flushed to a table) has nothing left to sync.
func (f *fileSyncer) fdatasync(name string) error {
	fd, err := f.open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// fdatasync, as badger's msync is: the files are mapped at their full
	// size, so no metadata needs writing for the data to be found again.
	if err := unix.Fdatasync(int(fd.Fd())); err != nil {
		return fmt.Errorf("cannot fdatasync %q: %w", name, err)
	}
	if h := f.hooks(); h != nil && h.badgerFileSynced != nil {
		h.badgerFileSynced(name)
	}
	return nil
}

func (f *fileSyncer) open(name string) (*os.File, error) {
	if fd, ok := f.files[name]; ok {
		return fd, nil
	}
	fd, err := os.OpenFile(filepath.Join(f.dir, name), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	f.files[name] = fd
	return fd, nil
}

func (f *fileSyncer) close() {
	for n, fd := range f.files {
		fd.Close()
		delete(f.files, n)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot fsync %q: %w", dir, err)
	}
	if h := dirSynced.Load(); h != nil {
		(*h)(dir)
	}
	return nil
}

// dirSynced, tests only, is told each directory syncDir fsynced.
var dirSynced atomic.Pointer[func(dir string)]

// mkdirDurable creates dir and its missing parents, and makes their names
// durable: it fsyncs the parent of each directory it created, and, when
// fresh (dir holds no MANIFEST: a new WAL, or one whose first start a
// crash cut short, maybe before that fsync), dir's parent. Without it a
// power loss soon after the first start could take the whole directory,
// acknowledged entries and all.
func mkdirDurable(dir string) error {
	dir = filepath.Clean(dir)
	var created []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); errors.Is(err, os.ErrNotExist) && len(created) == 0 {
		created = append(created, dir)
	}
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}
