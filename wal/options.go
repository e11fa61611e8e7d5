package wal

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// SyncPolicy decides when an acks=1 (durable=false) append is acknowledged.
// An acks=-1 (durable=true) append always waits for the fsync that covers it.
type SyncPolicy int

const (
	// SyncBatch fsyncs every group commit before acknowledging any append
	// of the group. The default: an acknowledged append survives a crash.
	SyncBatch SyncPolicy = iota
	// SyncInterval acknowledges acks=1 appends once written (they survive a
	// process crash, not a power loss) and fsyncs at most every
	// Options.SyncInterval.
	SyncInterval
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncBatch:
		return "batch"
	case SyncInterval:
		return "interval"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// ParseSyncPolicy parses "batch" or "interval" (the config file spelling).
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "batch":
		return SyncBatch, nil
	case "interval":
		return SyncInterval, nil
	}
	return 0, fmt.Errorf("unknown WAL sync policy %q: want batch or interval", s)
}

// Options configures a WAL. The zero value is usable: every zero field
// takes the default given in its comment.
//
// The yaml names are the keys of the `wal` section of slsrelay's
// configuration file; fields tagged "-" are internal tuning or set by the
// relay's assembly (Sync from wal.sync through ParseSyncPolicy, the key
// from wal.encryption_key_file or _env).
type Options struct {
	// Sync is the fsync policy for acks=1 appends. Default SyncBatch.
	Sync SyncPolicy `yaml:"-"`
	// SyncInterval is the longest time between two fsyncs under
	// SyncInterval, and so the longest an acks=-1 append waits for its
	// fsync under that policy. Default 100ms.
	SyncInterval time.Duration `yaml:"sync_interval"`

	// MaxDiskBytes limits the bytes the WAL directory may take on disk.
	// An append that would go over fails with ErrFull; nothing stored is
	// touched and appends succeed again once reclaim frees space. 0 means
	// no limit other than MinFreeDiskBytes.
	MaxDiskBytes int64 `yaml:"max_disk_bytes"`
	// HighWatermark is the fraction of MaxDiskBytes above which Pressure
	// reports back-pressure (0 < HighWatermark < 1). Default 0.8.
	HighWatermark float64 `yaml:"high_watermark"`
	// MinFreeDiskBytes is the free space the WAL leaves on its file system:
	// appends fail with ErrFull when less would remain. It matters because
	// badger writes its value log and memtables through mmap, where running
	// out of space is a SIGBUS that kills the process instead of an error.
	// Default 2*ValueLogFileSize; negative disables the check.
	MinFreeDiskBytes int64 `yaml:"-"`

	// DataFileBytes is the size at which the WAL starts a new data file.
	// All streams share the file being written, and a file is deleted
	// once every stream is delivered past its entries, so this is the
	// granularity in which space comes back (a stream that lags keeps the
	// files from its oldest undelivered entry on). Default 64 MiB.
	DataFileBytes int64 `yaml:"-"`
	// SegmentBytes is how many bytes of entries a stream indexes before it
	// starts a new index segment; a consumed segment's index rows are
	// dropped at once. Default 16 MiB.
	SegmentBytes int64 `yaml:"-"`
	// ValueLogFileSize is the size of one badger value-log file, which
	// holds dead letters (entries live in the data files). Value-log GC
	// frees whole files and never the one being written. Default 32 MiB.
	ValueLogFileSize int64 `yaml:"-"`
	// MemTableSize is badger's memtable size. Entries live in the data
	// files, so memtables only hold keys; keep it small. Default 8 MiB.
	MemTableSize int64 `yaml:"-"`
	// BlockCacheSize is badger's block cache. Default 8 MiB.
	BlockCacheSize int64 `yaml:"-"`

	// MaxGroupBytes and MaxGroupEntries bound one group commit (one write
	// and one fdatasync). Defaults 32 MiB and 512.
	MaxGroupBytes   int `yaml:"-"`
	MaxGroupEntries int `yaml:"-"`

	// ReclaimInterval is how often consumed segments are dropped and the
	// value log garbage-collected in the background. Default 10s; negative
	// disables background reclaim (call Reclaim yourself).
	ReclaimInterval time.Duration `yaml:"-"`

	// EncryptionKey (KeySize bytes, see LoadKeyFile and KeyFromEnv)
	// encrypts credential secrets with AES-256-GCM. Without it, appends
	// whose credential has a secret fail with ErrNoKey.
	EncryptionKey []byte `yaml:"-"`

	// Logger receives the WAL's and badger's warnings. Default: discard.
	Logger *slog.Logger `yaml:"-"`
}

func (o Options) withDefaults() (Options, error) {
	if o.Sync != SyncBatch && o.Sync != SyncInterval {
		return o, fmt.Errorf("unknown sync policy %v", o.Sync)
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 100 * time.Millisecond
	}
	if o.HighWatermark == 0 {
		o.HighWatermark = 0.8
	}
	if o.HighWatermark <= 0 || o.HighWatermark >= 1 {
		return o, fmt.Errorf("HighWatermark %v not in (0, 1)", o.HighWatermark)
	}
	if o.MaxDiskBytes < 0 {
		return o, fmt.Errorf("negative MaxDiskBytes %d", o.MaxDiskBytes)
	}
	if o.DataFileBytes <= 0 {
		o.DataFileBytes = 64 << 20
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 16 << 20
	}
	if o.ValueLogFileSize <= 0 {
		o.ValueLogFileSize = 32 << 20
	}
	if o.ValueLogFileSize < 1<<20 {
		o.ValueLogFileSize = 1 << 20 // badger's minimum
	}
	if o.MinFreeDiskBytes == 0 {
		o.MinFreeDiskBytes = 2 * o.ValueLogFileSize
	}
	if o.MemTableSize <= 0 {
		o.MemTableSize = 8 << 20
	}
	if o.BlockCacheSize <= 0 {
		o.BlockCacheSize = 8 << 20
	}
	if o.MaxGroupBytes <= 0 {
		o.MaxGroupBytes = 32 << 20
	}
	if o.MaxGroupEntries <= 0 {
		o.MaxGroupEntries = 512
	}
	if o.ReclaimInterval == 0 {
		o.ReclaimInterval = 10 * time.Second
	}
	if len(o.EncryptionKey) != 0 && len(o.EncryptionKey) != KeySize {
		return o, fmt.Errorf("EncryptionKey is %d bytes, want %d", len(o.EncryptionKey), KeySize)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o, nil
}
