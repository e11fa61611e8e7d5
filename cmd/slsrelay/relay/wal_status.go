package relay

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// WriteWALStatus writes the table `slsrelay wal status` and the admin
// listener's /wal/status show.
func WriteWALStatus(out io.Writer, st wal.Stats) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tNEXT\tCOMMITTED\tPENDING ENTRIES\tPENDING BYTES\tOLDEST")
	for _, s := range st.Streams {
		fmt.Fprintf(tw, "%s/%s/%d\t%d\t%d\t%d\t%d\t%s\n", s.Key.Project, s.Key.Logstore, s.Key.Partition,
			s.NextOffset, s.Committed, s.PendingEntries, s.PendingBytes, s.OldestPending.Round(time.Second))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "disk: %d bytes", st.DiskBytes)
	if st.MaxDiskBytes > 0 {
		fmt.Fprintf(out, " of %d (pressure %.2f)", st.MaxDiskBytes, st.Pressure)
	}
	_, err := fmt.Fprintf(out, " in %d data files; pending %d entries, %d bytes; %d dead letters\n", st.DataFiles, st.PendingEntries, st.PendingBytes, st.DeadLetters)
	return err
}
