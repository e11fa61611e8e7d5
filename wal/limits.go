package wal

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// diskState tracks how much space the WAL takes. Scanning the directory is
// cheap (tens of files) but not free, so between scans the bytes written
// are added to the last figure; reclaim and a timer rescan.
//
// mu protects every field. It is a leaf lock (see WAL): the directory is
// scanned before it is taken.
type diskState struct {
	mu        sync.Mutex
	scanned   int64 // directory size at the last scan
	since     int64 // bytes written since
	free      int64 // file-system space available at the last scan (-1: unknown)
	scannedAt time.Time

	full      bool  // an ErrFull has been logged and not yet cleared
	errLogged bool  // a disk error has been logged and not yet cleared
	errSeq    int64 // disk errors so far
	stopped   bool  // appends stopped until restart: never cleared
	indexBad  bool  // the last index write failed
	indexSeq  int64 // errSeq after the index write failed
}

const rescanEvery = time.Second

func (d *diskState) init(w *WAL) { w.rescan() }

// rescan measures the directory and the file system.
func (w *WAL) rescan() {
	size, err := dirSize(w.dir)
	free := int64(-1)
	var fs syscall.Statfs_t
	if syscall.Statfs(w.dir, &fs) == nil {
		free = int64(fs.Bavail) * int64(fs.Bsize)
	}
	d := &w.disk
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.scanned, d.since = size, 0
	}
	d.free = free
	d.scannedAt = time.Now()
}

// DiskBytes returns the space the WAL directory takes, as of the last scan
// plus what was written since. Safe for concurrent use.
func (w *WAL) DiskBytes() int64 {
	w.disk.mu.Lock()
	defer w.disk.mu.Unlock()
	return w.disk.scanned + w.disk.since
}

// Pressure tells how close the WAL is to its size limit: 0 below
// Options.HighWatermark of MaxDiskBytes, rising linearly to 1 at the limit
// (and above 1 past it). The engine turns it into throttle_time_ms. Always 0
// without MaxDiskBytes. Safe for concurrent use.
func (w *WAL) Pressure() float64 {
	if w.opts.MaxDiskBytes <= 0 {
		return 0
	}
	used := float64(w.DiskBytes())
	max := float64(w.opts.MaxDiskBytes)
	hw := w.opts.HighWatermark * max
	if used <= hw {
		return 0
	}
	return (used - hw) / (max - hw)
}

// admit decides whether n more bytes may be written; called by the
// committer for each append. It logs entering and leaving the full state
// once each, not once per refused append.
func (w *WAL) admit(n int64) error {
	d := &w.disk
	d.mu.Lock()
	stale := time.Since(d.scannedAt) > rescanEvery
	d.mu.Unlock()
	if stale {
		w.rescan()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	used := d.scanned + d.since
	var why string
	switch {
	case w.opts.MaxDiskBytes > 0 && used+n > w.opts.MaxDiskBytes:
		why = fmt.Sprintf("WAL at %d of %d bytes (MaxDiskBytes)", used, w.opts.MaxDiskBytes)
	case w.opts.MinFreeDiskBytes > 0 && d.free >= 0 && d.free-d.since-n < w.opts.MinFreeDiskBytes:
		why = fmt.Sprintf("file system has %d bytes free, keeping %d (MinFreeDiskBytes)", d.free-d.since, w.opts.MinFreeDiskBytes)
	}
	if why != "" {
		if !d.full {
			d.full = true
			w.log.Warn("wal: disk buffer full; appends fail until delivered data is reclaimed", "dir", w.dir, "reason", why)
		}
		return fmt.Errorf("%w: %s", ErrFull, why)
	}
	if d.full {
		d.full = false
		w.log.Info("wal: disk buffer has room again; appends resume", "dir", w.dir, "bytes", used)
	}
	d.since += n
	return nil
}

// diskError wraps a write or sync failure and logs the first of a run.
func (w *WAL) diskError(op string, err error) error {
	d := &w.disk
	d.mu.Lock()
	d.errSeq++
	if !d.errLogged {
		d.errLogged = true
		w.log.Error("wal: disk error; appends fail until it clears", "dir", w.dir, "op", op, "err", err)
	}
	d.mu.Unlock()
	if errors.Is(err, syscall.ENOSPC) {
		err = fmt.Errorf("%w: %w", ErrFull, err)
	}
	return fmt.Errorf("wal: cannot %s in %q: %w", op, w.dir, err)
}

// indexState notes whether the last index write failed: the disk is not
// well again before it succeeds.
func (w *WAL) indexState(err error) {
	d := &w.disk
	if err != nil {
		w.diskError("write the index", err)
	}
	d.mu.Lock()
	wasBad, seq := d.indexBad, d.indexSeq
	d.indexBad = err != nil
	if err != nil {
		d.indexSeq = d.errSeq
	}
	d.mu.Unlock()
	if err == nil && wasBad {
		w.diskOK(seq) // unless another error came since
	}
}

// diskSeq numbers the disk errors so far: a sync proves the disk well
// again only for writes made after the last error.
func (w *WAL) diskSeq() int64 {
	w.disk.mu.Lock()
	defer w.disk.mu.Unlock()
	return w.disk.errSeq
}

// diskOK notes a successful sync of writes made when diskSeq was seq.
func (w *WAL) diskOK(seq int64) {
	d := &w.disk
	d.mu.Lock()
	if d.errLogged && seq == d.errSeq && !d.stopped && !d.indexBad {
		d.errLogged = false
		w.log.Info("wal: disk writes succeed again", "dir", w.dir)
	}
	d.mu.Unlock()
}

// allocated is the space a file takes on disk.
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
