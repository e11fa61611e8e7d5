package relay_test

import (
	"bufio"
	"math"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
)

// gauges reads the unlabelled samples of a /metrics page.
func gauges(t *testing.T, page string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(page))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.ContainsAny(name, "{#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", sc.Text(), err)
		}
		out[name] = v
	}
	return out
}

// /metrics says the relay is ready, as /readyz does, and how much room the
// WAL's file system has, as statfs of the WAL directory says.
func TestReadyAndFilesystemMetrics(t *testing.T) {
	r := relaytest.Start(t, relaytest.Config(t))
	if body := adminGet(t, r, "/readyz"); body != "ready\n" {
		t.Fatalf("/readyz: %q", body)
	}
	m := gauges(t, adminGet(t, r, "/metrics"))
	var fs unix.Statfs_t
	if err := unix.Statfs(r.Config().WALDir(), &fs); err != nil {
		t.Fatal(err)
	}
	free, size := float64(fs.Bavail)*float64(fs.Bsize), float64(fs.Blocks)*float64(fs.Bsize)
	f := func(name string, want, tolerance float64) {
		t.Helper()
		got, ok := m[name]
		if !ok {
			t.Errorf("/metrics has no %s", name)
		} else if math.Abs(got-want) > tolerance {
			t.Errorf("%s = %v, want %v ± %v", name, got, want, tolerance)
		}
	}
	f("slsrelay_ready", 1, 0)
	f("slsrelay_wal_filesystem_size_bytes", size, 0)
	// Other processes share the disk: free space moves between the two
	// readings, by far less than 1 GB.
	f("slsrelay_wal_filesystem_free_bytes", free, 1e9)
	f("slsrelay_wal_filesystem_free_ratio", free/size, 1e9/size)
	if ratio := m["slsrelay_wal_filesystem_free_ratio"]; ratio <= 0 || ratio > 1 {
		t.Errorf("free ratio %v", ratio)
	}
}
