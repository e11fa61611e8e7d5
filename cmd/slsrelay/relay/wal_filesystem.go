package relay

import (
	"io"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sys/unix"
)

// writeWALFilesystem writes the space of the file system that holds the
// WAL directory (statfs at scrape time): what is free for the relay (not
// root's reserve, which the relay's user cannot use), the size, and free
// over size. The WAL refuses appends when less than its reserve (twice
// badger's value-log file size, 64 MiB by default) would remain, and
// slsrelay_wal_pressure only measures against wal.max_disk_bytes: these
// gauges show a disk that other files fill. Nothing is written when statfs
// fails (the directory is gone): the series' absence is the signal.
func writeWALFilesystem(w io.Writer, dir string) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Blocks == 0 {
		return
	}
	bsize := uint64(fs.Bsize)
	metrics.WriteGaugeUint64(w, "slsrelay_wal_filesystem_free_bytes", uint64(fs.Bavail)*bsize)
	metrics.WriteGaugeUint64(w, "slsrelay_wal_filesystem_size_bytes", uint64(fs.Blocks)*bsize)
	metrics.WriteGaugeFloat64(w, "slsrelay_wal_filesystem_free_ratio", float64(fs.Bavail)/float64(fs.Blocks))
}
