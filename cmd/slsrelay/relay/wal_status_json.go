package relay

import (
	"encoding/json"
	"io"

	"github.com/slsrelay/slsrelay/wal"
)

// WALStatus is `slsrelay wal status -json`: the table's figures under
// stable snake_case names, durations in seconds.
type WALStatus struct {
	Streams        []WALStreamStatus `json:"streams"`
	PendingEntries int64             `json:"pending_entries"`
	PendingBytes   int64             `json:"pending_bytes"`
	DiskBytes      int64             `json:"disk_bytes"`
	// MaxDiskBytes is 0 without a limit.
	MaxDiskBytes int64   `json:"max_disk_bytes"`
	Pressure     float64 `json:"pressure"`
	DataFiles    int     `json:"data_files"`
	DeadLetters  int     `json:"dead_letters"`
}

// WALStreamStatus is one stream of WALStatus.
type WALStreamStatus struct {
	Project              string  `json:"project"`
	Logstore             string  `json:"logstore"`
	Partition            int32   `json:"partition"`
	NextOffset           int64   `json:"next_offset"`
	Committed            int64   `json:"committed"`
	PendingEntries       int64   `json:"pending_entries"`
	PendingBytes         int64   `json:"pending_bytes"`
	OldestPendingSeconds float64 `json:"oldest_pending_seconds"`
}

// NewWALStatus is st as WALStatus.
func NewWALStatus(st wal.Stats) WALStatus {
	out := WALStatus{
		Streams:        []WALStreamStatus{},
		PendingEntries: st.PendingEntries, PendingBytes: st.PendingBytes,
		DiskBytes: st.DiskBytes, MaxDiskBytes: st.MaxDiskBytes, Pressure: st.Pressure,
		DataFiles: st.DataFiles, DeadLetters: st.DeadLetters,
	}
	for _, s := range st.Streams {
		out.Streams = append(out.Streams, WALStreamStatus{
			Project: s.Key.Project, Logstore: s.Key.Logstore, Partition: s.Key.Partition,
			NextOffset: s.NextOffset, Committed: s.Committed,
			PendingEntries: s.PendingEntries, PendingBytes: s.PendingBytes,
			OldestPendingSeconds: s.OldestPending.Seconds(),
		})
	}
	return out
}

// WriteWALStatusJSON writes st as one JSON document (WALStatus), for
// `slsrelay wal status -json` and for an admin endpoint that answers
// Accept: application/json.
func WriteWALStatusJSON(out io.Writer, st wal.Stats) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(NewWALStatus(st))
}
