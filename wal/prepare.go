package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The spare data file (Options.PrepareDataFiles). A data file that grows
// needs the file system's metadata committed at each fdatasync (its new
// size; on ext4 the new blocks too, through a journal commit), and that
// commit was the suspect for a group commit's rare fdatasync of 0.1–0.5 s
// on this disk. Blocks written with zeros and fdatasynced beforehand are only
// overwritten: fdatasync writes the data and nothing else. (fallocate does
// not do: its unwritten extents are converted at the first write, which is
// metadata again.) Measured with 64 KiB writes + fdatasync for 60 s, side
// by side: appending, p99.9 25.5 ms and 90 syncs over 25 ms; overwriting a
// zero-filled file, 18.3 ms and 20; fallocate, 24.3 ms and 84. In the WAL,
// where the next file's zeros are written while the group commits sync,
// it halved the median fdatasync and did not reduce the slow ones
// (BenchmarkAppendPrepared, and the burst runs in the README), hence
// off by default.
//
// One goroutine keeps one spare, spareName in the data directory, filled
// with DataFileBytes zeros and fdatasynced; it is filled under
// spareTmpName and renamed once complete, so a spareName found at Open is
// whole. startFile renames the spare to the next data file's name when one
// is ready and creates an empty file otherwise: the committer never waits
// for the preparer. Neither name ends in dataFileExt, so no spare is ever
// listed or replayed as a data file.

const (
	spareName    = "next.prep"
	spareTmpName = "next.prep.tmp"
	// spareChunk is one write of zeros, written back before the next (see
	// fill).
	spareChunk = 1 << 20
	// spareRetryAfter is how long the preparer waits after a failed fill.
	spareRetryAfter = 10 * time.Second
)

// preparer keeps the spare. ready is set by the preparer once a spare is
// complete and cleared by the committer when it takes it; the preparer
// fills a new one only while ready is clear, so the two never touch
// spareName at the same time. Safe for concurrent use.
type preparer struct {
	dir   string // the data directory
	size  int64
	log   *slog.Logger
	ready atomic.Bool
	wake  chan struct{}
	// room tells whether the disk limits leave room for another spare.
	room func(n int64) bool
	// taken and missed count the data files started from a spare and
	// those started empty because none was ready.
	taken, missed atomic.Int64
	// filling is set while a spare is being written (for benchmarks: do
	// slow syncs coincide with the zeros?).
	filling atomic.Bool
}

// openPreparer, at Open, removes a half-filled spare, keeps a complete one
// of the right size and removes any other (preparation off, or another
// DataFileBytes). It returns nil when preparation is off.
func openPreparer(dataDir string, opts Options, room func(int64) bool) (*preparer, error) {
	if err := os.Remove(filepath.Join(dataDir, spareTmpName)); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("cannot delete a half-prepared spare: %w", err)
	}
	spare := filepath.Join(dataDir, spareName)
	fi, err := os.Stat(spare)
	whole := err == nil && fi.Size() == opts.DataFileBytes
	if !opts.PrepareDataFiles || err == nil && !whole {
		if err := os.Remove(spare); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("cannot delete %q: %w", spare, err)
		}
	}
	if !opts.PrepareDataFiles {
		return nil, nil
	}
	p := &preparer{dir: dataDir, size: opts.DataFileBytes, log: opts.Logger, wake: make(chan struct{}, 1), room: room}
	p.ready.Store(whole)
	return p, nil
}

// want is called by the committer with the active file's size: it wakes
// the preparer once the file is a quarter full and no spare is ready (so
// an idle or slow WAL writes no zeros). Safe on a nil preparer.
func (p *preparer) want(activeSize int64) {
	if p == nil || activeSize < p.size/4 || p.ready.Load() {
		return
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// take renames the spare to path and opens it for writing. It returns a
// nil file when no spare is ready (the caller creates one). Committer
// only; safe on a nil preparer.
func (p *preparer) take(path string) (*os.File, error) {
	if p == nil {
		return nil, nil
	}
	if !p.ready.Load() {
		p.missed.Add(1)
		return nil, nil
	}
	p.ready.Store(false)
	from := filepath.Join(p.dir, spareName)
	// NOREPLACE: a data file is never overwritten, whatever is on disk.
	if err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE); err != nil {
		p.log.Warn("wal: cannot use the prepared data file; creating a plain one", "spare", from, "err", err)
		p.missed.Add(1)
		return nil, nil
	}
	fd, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("cannot open %q: %w", path, err)
	}
	p.taken.Add(1)
	return fd, nil
}

// run fills a spare each time one is wanted, until closing is closed; a
// fill in progress then stops and its file is removed.
func (p *preparer) run(closing <-chan struct{}) {
	if err := idleIOThread(); err != nil {
		p.log.Debug("wal: the preparer's writes keep their I/O priority", "err", err)
	}
	var failedAt time.Time
	for {
		select {
		case <-closing:
			return
		case <-p.wake:
		}
		if p.ready.Load() || time.Since(failedAt) < spareRetryAfter || !p.room(p.size) {
			continue
		}
		tmp := filepath.Join(p.dir, spareTmpName)
		p.filling.Store(true)
		err := p.fill(tmp, closing)
		p.filling.Store(false)
		if err == nil {
			err = os.Rename(tmp, filepath.Join(p.dir, spareName))
		}
		if err != nil {
			os.Remove(tmp)
			if errors.Is(err, errPrepareStopped) {
				return
			}
			failedAt = time.Now()
			p.log.Warn("wal: cannot prepare the next data file; data files are created empty until it works", "dir", p.dir, "retry_after", spareRetryAfter, "err", err)
			continue
		}
		p.ready.Store(true)
	}
}

var errPrepareStopped = errors.New("wal: closing")

// fill writes size zeros to path and fdatasyncs them, from the idle I/O
// class (see idleIOThread: run's thread, writing back through
// sync_file_range, submits the writes itself). Each chunk is
// written back (sync_file_range) before the next is written: the dirty
// zeros never exceed one chunk, so no large flush queues in front of a
// group commit's fdatasync, and the fill goes at the pace the disk takes
// it. sync_file_range commits no metadata, so the file's growth costs one
// journal commit, at the final fdatasync, instead of one per flush.
func (p *preparer) fill(path string, closing <-chan struct{}) error {
	fd, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create %q: %w", path, err)
	}
	defer fd.Close()
	zeros := zeroChunk[:]
	const writeBack = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	for off := int64(0); off < p.size; {
		select {
		case <-closing:
			return errPrepareStopped
		default:
		}
		n := min(int64(len(zeros)), p.size-off)
		if _, err := fd.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("cannot write %q: %w", path, err)
		}
		if err := unix.SyncFileRange(int(fd.Fd()), off, n, writeBack); err != nil {
			return fmt.Errorf("cannot write back %q: %w", path, err)
		}
		off += n
	}
	if err := unix.Fdatasync(int(fd.Fd())); err != nil {
		return fmt.Errorf("cannot fdatasync %q: %w", path, err)
	}
	return nil
}

// roomForSpare tells whether n more bytes leave the WAL below its high
// watermark and the file system above MinFreeDiskBytes: the spare counts
// toward both (it is in the directory DiskBytes measures), so none is
// prepared where it would itself start back-pressure or refusals.
func (w *WAL) roomForSpare(n int64) bool {
	d := &w.disk
	d.mu.Lock()
	defer d.mu.Unlock()
	used := d.scanned + d.since
	if w.opts.MaxDiskBytes > 0 && float64(used+n) > w.opts.HighWatermark*float64(w.opts.MaxDiskBytes) {
		return false
	}
	return w.opts.MinFreeDiskBytes <= 0 || d.free < 0 || d.free-d.since-n >= w.opts.MinFreeDiskBytes
}
