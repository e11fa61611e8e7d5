package wal

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// fileSyncer makes a group commit durable. badger's DB.Sync alone does
// not: it syncs only the current value-log file and memtable log, and when
// a write fills a file badger moves on to the next without syncing the old
// one (unless SyncWrites), so the tail of the old file — acknowledged
// already — would sit unsynced in the page cache, lost on power failure.
// So after DB.Sync the syncer also fdatasyncs the files that were current
// at the previous sync and are not any more (listed after DB.Sync, see
// sync). And DB.Sync msyncs a mapping
// that a concurrent rotation may be remapping, failing with ENOMEM; then
// every file since the previous sync is fdatasynced instead.
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
// badger's logs are listed after DB.Sync, not before: a write may start a
// new memtable (or value log) between a listing and DB.Sync, which then
// syncs the new active log, and the one it left — the newest in a listing
// taken before, so not fdatasynced here either — would keep rows the
// acknowledgements depend on unsynced until badger flushed it
// (TestPowerLossMemtableRotatedDuringSync). Listed after, the log DB.Sync
// synced is the newest or older (fdatasynced again, harmlessly); a newer
// one holds only writes that came after DB.Sync.
func (f *fileSyncer) sync(dbSync func() error) error {
	dbErr := dbSync()
	if dbErr != nil && !errors.Is(dbErr, unix.ENOMEM) {
		return dbErr
	}
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return fmt.Errorf("cannot list %q: %w", f.dir, err)
	}
	var targets []string
	newestVlog, newestMem, appeared := f.lastVlog, f.lastMem, false
	seen := make(map[string]bool, len(ents))
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasSuffix(n, ".mem") && n >= f.lastMem:
			newestMem = max(newestMem, n)
		case strings.HasSuffix(n, ".vlog") && n >= f.lastVlog:
			newestVlog = max(newestVlog, n)
		default:
			continue
		}
		targets = append(targets, n)
		seen[n] = true
		if !f.known[n] {
			appeared = true
		}
	}
	if dbErr == nil {
		// Only the files that stopped being current remain.
		rest := targets[:0]
		for _, n := range targets {
			if n != newestVlog && n != newestMem {
				rest = append(rest, n)
			}
		}
		targets = rest
	}
	errs := make([]error, len(targets)+1)
	var wg sync.WaitGroup
	for i, n := range targets {
		fd, err := f.open(n)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted meanwhile: nothing to make durable
			}
			errs[i] = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// fdatasync, as badger's msync is: the files are mapped at
			// their full size, so no metadata needs writing for the data
			// to be found again.
			if err := unix.Fdatasync(int(fd.Fd())); err != nil {
				errs[i] = fmt.Errorf("cannot fdatasync %q: %w", n, err)
			} else if h := f.hooks(); h != nil && h.badgerFileSynced != nil {
				h.badgerFileSynced(n)
			}
		}()
	}
	if appeared {
		errs[len(targets)] = syncDir(f.dir)
		if h := f.hooks(); h != nil && h.badgerDirSynced != nil && errs[len(targets)] == nil {
			h.badgerDirSynced(slices.Collect(maps.Keys(seen)))
		}
	}
	wg.Wait()
	for n, fd := range f.files {
		if !seen[n] {
			fd.Close()
			delete(f.files, n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		// The same files are tried again (for what it is worth: the WAL
		// stops appends after a failed sync of badger's files).
		return err
	}
	f.known, f.lastVlog, f.lastMem = seen, newestVlog, newestMem
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
