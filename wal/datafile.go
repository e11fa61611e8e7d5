package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Data files hold the batches; badger holds only an index to them and the
// small tables. Why not badger's value log: a group commit there cost about
// 1 ms of sync against 0.25 ms for the same bytes written with write(2) to
// a file of our own and fdatasynced (measured side by side, 16 appenders of
// 64 KiB: 0.35–0.43 of a plain file's throughput). badger writes its value
// log through a shared mapping, and its Sync pays for that.
//
// All streams share one active data file, appended to by the committer
// goroutine and fdatasynced by the syncer, one fdatasync per group. A new
// file starts every Options.DataFileBytes and at every Open (so nothing is
// ever appended after a tail a crash may have torn). A file is deleted
// once every stream with frames in it has committed past them.
//
// Frame layout, one per entry:
//
//	magic(1)=0xB7 | sid(4) | deadID(8) | bodyLen(4) | crc32c(4) of the 17 bytes before it | body
//
// body is the stored entry encoding (codec.go, with its own checksum).
// deadID is non-zero for a dead letter replayed into its stream: recovery
// that indexes the frame also deletes the dead letter, so it is in exactly
// one place whatever happens.

const (
	dataDirName    = "data"
	dataFileExt    = ".data"
	frameMagic     = 0xB7
	frameHeaderLen = 21
	dataPtrLen     = 20
)

// dataPtr locates one frame: the value of an 'e' key.
type dataPtr struct {
	file uint64
	pos  int64
	n    uint32 // frame length, header included
}

func (p dataPtr) encode() []byte {
	b := make([]byte, 0, dataPtrLen)
	b = binary.BigEndian.AppendUint64(b, p.file)
	b = binary.BigEndian.AppendUint64(b, uint64(p.pos))
	return binary.BigEndian.AppendUint32(b, p.n)
}

func decodeDataPtr(b []byte) (dataPtr, error) {
	if len(b) != dataPtrLen {
		return dataPtr{}, fmt.Errorf("index value is %d bytes, want %d: %w", len(b), dataPtrLen, ErrCorrupt)
	}
	p := dataPtr{file: binary.BigEndian.Uint64(b), pos: int64(binary.BigEndian.Uint64(b[8:])), n: binary.BigEndian.Uint32(b[16:])}
	if p.n < frameHeaderLen || p.pos < 0 {
		return dataPtr{}, fmt.Errorf("index value %+v out of range: %w", p, ErrCorrupt)
	}
	return p, nil
}

// appendFrame appends one frame to b; body appends the frame's body.
func appendFrame(b []byte, sid uint32, deadID uint64, body func([]byte) []byte) []byte {
	h := len(b)
	b = append(b, make([]byte, frameHeaderLen)...) // known after the body
	b = body(b)
	putFrameHeader(b[h:], frameHeader{sid: sid, deadID: deadID, bodyLen: uint32(len(b) - h - frameHeaderLen)})
	return b
}

// putFrameHeader writes h into the first frameHeaderLen bytes of b.
func putFrameHeader(b []byte, h frameHeader) {
	b[0] = frameMagic
	binary.BigEndian.PutUint32(b[1:], h.sid)
	binary.BigEndian.PutUint64(b[5:], h.deadID)
	binary.BigEndian.PutUint32(b[13:], h.bodyLen)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[:17], castagnoli))
}

type frameHeader struct {
	sid     uint32
	deadID  uint64
	bodyLen uint32
}

func decodeFrameHeader(b []byte) (frameHeader, error) {
	if len(b) < frameHeaderLen {
		return frameHeader{}, fmt.Errorf("frame header truncated: %w", ErrCorrupt)
	}
	if b[0] != frameMagic {
		return frameHeader{}, fmt.Errorf("no frame marker (%#x): %w", b[0], ErrCorrupt)
	}
	if got, want := crc32.Checksum(b[:17], castagnoli), binary.BigEndian.Uint32(b[17:]); got != want {
		return frameHeader{}, fmt.Errorf("frame header checksum %08x, stored %08x: %w", got, want, ErrCorrupt)
	}
	return frameHeader{
		sid:     binary.BigEndian.Uint32(b[1:]),
		deadID:  binary.BigEndian.Uint64(b[5:]),
		bodyLen: binary.BigEndian.Uint32(b[13:]),
	}, nil
}

// dataFile is one file of frames.
type dataFile struct {
	num  uint64
	path string

	// mu protects fd. Taken under dataFiles.mu, never the other way
	// round (see WAL).
	mu sync.Mutex
	fd *os.File // nil until needed, and again once reclaim closes it

	// poisoned is set when an fdatasync of the file failed: nothing
	// written to it may be acknowledged any more (see syncFailed).
	poisoned atomic.Bool

	// ends is, per stream, the offset after its last frame in the file
	// that is indexed: the file may go once every reader is past it.
	// Protected by dataFiles.mu.
	ends map[uint32]int64
}

// dataFiles is the set of data files. The committer appends to the active
// file; readers pread any file.
type dataFiles struct {
	dir string

	// mu protects files and each file's ends. It is held shared around
	// reads, so a file is closed and deleted only when no read is using
	// it. Under it only a dataFile.mu is taken (see WAL).
	mu    sync.RWMutex
	files map[uint64]*dataFile

	// Committer only (and Open).
	active     *dataFile
	activeSize int64
	broken     error // set by write: appends are refused
	// lastNum is the highest file number ever used, also by files since
	// deleted: numbers never go back, or recovery, which replays the
	// files from the checkpoint's on, would skip a new file 1.
	lastNum uint64
}

func dataFilePath(dir string, num uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016d%s", num, dataFileExt))
}

// openDataFiles lists the data files in dir (created if missing).
func openDataFiles(walDir string) (*dataFiles, error) {
	dir := filepath.Join(walDir, dataDirName)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		// The new directory's name must survive a power loss too.
		if err := syncDir(walDir); err != nil {
			return nil, err
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	d := &dataFiles{dir: dir, files: make(map[uint64]*dataFile)}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, dataFileExt) {
			continue
		}
		num, err := strconv.ParseUint(strings.TrimSuffix(name, dataFileExt), 10, 64)
		if err != nil || num == 0 {
			continue // not ours
		}
		d.files[num] = &dataFile{num: num, path: filepath.Join(dir, name), ends: map[uint32]int64{}}
		d.lastNum = max(d.lastNum, num)
	}
	return d, nil
}

// nums returns the numbers of the files, in order.
func (d *dataFiles) nums() []uint64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]uint64, 0, len(d.files))
	for n := range d.files {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// startFile creates the next file and makes it the active one; the old
// active file stays open for reads and for its last fdatasync (the caller
// hands it to the syncer). Committer only.
func (d *dataFiles) startFile() (old *dataFile, err error) {
	num := d.lastNum + 1
	path := dataFilePath(d.dir, num)
	fd, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot create %q: %w", path, err)
	}
	// The new name must survive a power loss before anything acked lives
	// in the file.
	if err := syncDir(d.dir); err != nil {
		fd.Close()
		os.Remove(path)
		return nil, err
	}
	f := &dataFile{num: num, path: path, fd: fd, ends: map[uint32]int64{}}
	d.lastNum = num
	d.mu.Lock()
	d.files[num] = f
	d.mu.Unlock()
	old, d.active, d.activeSize = d.active, f, 0
	return old, nil
}

// write appends b to the active file. On a failed or short write the file
// is cut back to where it was and the cut synced, so a later frame never
// follows a torn one and the failed frames never come back; if that fails,
// d.broken is set and no append is taken until a restart (see errBroken).
// Committer only.
func (d *dataFiles) write(b []byte) error {
	f := d.active
	fd := f.current()
	n, err := fd.WriteAt(b, d.activeSize)
	if err == nil {
		d.activeSize += int64(n)
		return nil
	}
	// The cut is synced before anything else is written: a cut lost to a
	// power loss would bring the failed frames back, at offsets the next
	// appends are given again.
	terr := fd.Truncate(d.activeSize)
	if terr == nil {
		terr = unix.Fdatasync(int(fd.Fd()))
	}
	if terr != nil {
		d.broken = fmt.Errorf("%w: %q could not be cut back to %d bytes after a failed write: %w", errBroken, f.path, d.activeSize, terr)
		err = errors.Join(err, d.broken)
	}
	return fmt.Errorf("cannot write %q: %w", f.path, err)
}

// errBroken: complete frames of a failed write may remain in the file, with
// offsets that later appends would be given again; recovery would index
// the failed frames and skip the acknowledged ones. Refusing appends until
// a restart (whose recovery indexes what is there, then starts a new file)
// keeps every acknowledged entry.
var errBroken = errors.New("wal: appends stopped until restart")

// readFrame reads the frame p points to and returns its header and body,
// in dst when it has room (a new buffer otherwise). Safe for concurrent use.
func (d *dataFiles) readFrame(p dataPtr, dst []byte) (frameHeader, []byte, error) {
	buf, err := d.readPrefixInto(p, p.n, dst)
	if err != nil {
		return frameHeader{}, nil, err
	}
	h, err := decodeFrameHeader(buf)
	if err != nil {
		return h, nil, err
	}
	if int64(h.bodyLen) != int64(p.n)-frameHeaderLen {
		return h, nil, fmt.Errorf("frame of %d bytes where the index says %d: %w", h.bodyLen, p.n-frameHeaderLen, ErrCorrupt)
	}
	return h, buf[frameHeaderLen:], nil
}

// readPrefix reads the first n bytes of the frame p points to (all of it
// when n >= p.n). Errors wrap ErrCorrupt: the index points at bytes that
// cannot be read. Safe for concurrent use.
func (d *dataFiles) readPrefix(p dataPtr, n uint32) ([]byte, error) {
	return d.readPrefixInto(p, n, nil)
}

// readPrefixInto is readPrefix reading into dst when it has room.
func (d *dataFiles) readPrefixInto(p dataPtr, n uint32, dst []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	f := d.files[p.file]
	if f == nil {
		return nil, fmt.Errorf("data file %d is missing: %w", p.file, ErrCorrupt)
	}
	fd, err := f.open()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	b := dst[:0]
	if want := int(min(n, p.n)); cap(b) >= want {
		b = b[:want]
	} else {
		b = make([]byte, want)
	}
	if _, err := fd.ReadAt(b, p.pos); err != nil {
		return nil, fmt.Errorf("%w: cannot read %d bytes at %d of %q: %w", ErrCorrupt, len(b), p.pos, f.path, err)
	}
	return b, nil
}

// receivedAtPos is where an entry's receivedAt sits in its frame: after the
// frame header and the entry's version, checksum, base offset, record
// count, magic, codec and flags (codec.go).
const receivedAtPos = frameHeaderLen + 1 + 4 + 8 + 4 + 3

// readReceivedAt reads only the receive time of the entry p points to, for
// Stats (once a second per stream with a backlog): a few bytes instead of
// the whole batch. The frame header is checked, the entry's checksum not.
// Safe for concurrent use.
func (d *dataFiles) readReceivedAt(p dataPtr) (int64, error) {
	if p.n < receivedAtPos+8 {
		return 0, fmt.Errorf("frame of %d bytes: %w", p.n, ErrCorrupt)
	}
	b, err := d.readPrefix(p, receivedAtPos+8)
	if err != nil {
		return 0, err
	}
	if _, err := decodeFrameHeader(b); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b[receivedAtPos:])), nil
}

// open returns the file's descriptor, opening it for reading if needed.
// Safe for concurrent use.
func (f *dataFile) open() (*os.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd != nil {
		return f.fd, nil
	}
	fd, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	f.fd = fd
	return fd, nil
}

// current returns the open descriptor, or nil. Safe for concurrent use.
func (f *dataFile) current() *os.File {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fd
}

// closeFD closes the descriptor if open. Safe for concurrent use; a read
// or sync using it holds a reference (os.File), so the descriptor itself
// goes when they are done.
func (f *dataFile) closeFD() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd != nil {
		f.fd.Close()
		f.fd = nil
	}
}

// noteEnds records, after an index transaction, where each stream's
// indexed frames end in each file. Safe for concurrent use.
func (d *dataFiles) noteEnds(ends map[uint64]map[uint32]int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for num, m := range ends {
		f := d.files[num]
		if f == nil {
			continue
		}
		for sid, end := range m {
			if end > f.ends[sid] {
				f.ends[sid] = end
			}
		}
	}
}

// consumed returns the files, other than the active one, whose every
// stream is committed past its frames (committed(sid) gives a stream's
// committed offset; it runs under d.mu, so it must take no lock).
// Committer only.
func (d *dataFiles) consumed(committed func(sid uint32) int64) []*dataFile {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []*dataFile
	for _, f := range d.files {
		if f != d.active && d.isConsumedLocked(f, committed) {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].num < out[j].num })
	return out
}

// isConsumed tells whether every stream is committed past its frames in f;
// committed is as for consumed.
func (d *dataFiles) isConsumed(f *dataFile, committed func(sid uint32) int64) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.isConsumedLocked(f, committed)
}

func (d *dataFiles) isConsumedLocked(f *dataFile, committed func(sid uint32) int64) bool {
	for sid, end := range f.ends {
		if committed(sid) < end {
			return false
		}
	}
	return true
}

// detach closes files and takes them out of the list, so that no reader
// finds them any more; remove deletes them. Committer only, after a sync
// barrier (their last fdatasync is done).
func (d *dataFiles) detach(fs []*dataFile) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range fs {
		f.closeFD()
		delete(d.files, f.num)
	}
}

// remove deletes files detach took out of the list and returns those
// gone; one that cannot be deleted goes back to the list, for the next
// Reclaim. No lock is held while deleting: the unlink of a full data file
// took 36 ms in a burst run, which readers and the committer's next file
// would have waited for. Reclaim only.
func (d *dataFiles) remove(fs []*dataFile) (gone []*dataFile, err error) {
	var errs []error
	var back []*dataFile
	for _, f := range fs {
		if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("cannot delete %q: %w", f.path, err))
			back = append(back, f)
			continue
		}
		gone = append(gone, f)
	}
	if len(back) > 0 {
		d.mu.Lock()
		for _, f := range back {
			d.files[f.num] = f
		}
		d.mu.Unlock()
	}
	return gone, errors.Join(errs...)
}

// closeInactive closes the descriptors of every file but the active one;
// readers open them again when they need them. Reclaim calls it, so a
// backlog of many files does not keep a descriptor per file open.
// Committer only, after a sync barrier (nothing is left to fdatasync).
func (d *dataFiles) closeInactive() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.files {
		if f != d.active {
			f.closeFD()
		}
	}
}

// close closes every open descriptor.
func (d *dataFiles) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.files {
		f.closeFD()
	}
}
