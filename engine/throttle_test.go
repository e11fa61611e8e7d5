package engine

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// The throttle grows with the overshoot past each limit, is capped, and
// follows the backlog as it is refreshed.
func TestBacklogThrottle(t *testing.T) {
	k := wal.StreamKey{Project: "p", Logstore: "l", Partition: 0}
	other := wal.StreamKey{Project: "p", Logstore: "l", Partition: 1}
	f := func(name string, o ThrottleOptions, b Backlog, want time.Duration) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			th := NewBacklogThrottle(o, func() Backlog { return b })
			defer th.Close()
			if got := th.ThrottleTime(k, 1); got != want {
				t.Fatalf("throttle %v, want %v", got, want)
			}
		})
	}
	const max = 4 * time.Second
	stream := func(bytes int64, age time.Duration) Backlog {
		return Backlog{Streams: map[wal.StreamKey]StreamBacklog{k: {Bytes: bytes, OldestAge: age}}}
	}
	f("nothing behind", ThrottleOptions{MaxThrottle: max}, Backlog{}, 0)
	f("WAL half way from high-water to full", ThrottleOptions{MaxThrottle: max}, Backlog{Pressure: 0.5}, 2*time.Second)
	f("WAL past full is capped", ThrottleOptions{MaxThrottle: max}, Backlog{Pressure: 3}, max)
	f("per-stream limits off by default", ThrottleOptions{MaxThrottle: max}, stream(1<<40, time.Hour), 0)
	f("stream bytes 1.5x the soft limit", ThrottleOptions{MaxThrottle: max, SoftBacklogBytes: 100}, stream(150, 0), 2*time.Second)
	f("stream age 2x the soft limit", ThrottleOptions{MaxThrottle: max, SoftBacklogAge: time.Minute}, stream(0, 2*time.Minute), max)
	f("another stream's backlog does not count", ThrottleOptions{MaxThrottle: max, SoftBacklogBytes: 100},
		Backlog{Streams: map[wal.StreamKey]StreamBacklog{other: {Bytes: 1 << 30}}}, 0)

	t.Run("follows the refreshed backlog", func(t *testing.T) {
		var pressure atomic.Value
		pressure.Store(0.0)
		th := NewBacklogThrottle(ThrottleOptions{MaxThrottle: max, Refresh: 10 * time.Millisecond},
			func() Backlog { return Backlog{Pressure: pressure.Load().(float64)} })
		defer th.Close()
		if d := th.ThrottleTime(k, 1); d != 0 {
			t.Fatalf("before: %v", d)
		}
		pressure.Store(1.0)
		deadline := time.Now().Add(5 * time.Second)
		for th.ThrottleTime(k, 1) != max {
			if time.Now().After(deadline) {
				t.Fatal("the throttle did not follow the backlog")
			}
			time.Sleep(5 * time.Millisecond)
		}
		th.SetOptions(ThrottleOptions{MaxThrottle: time.Second})
		if d := th.ThrottleTime(k, 1); d != time.Second {
			t.Fatalf("after SetOptions: %v", d)
		}
	})
}

// A project over its byte rate owes the time its excess takes at that
// rate; a second of bursting is free; other projects are not affected.
func TestProjectQuota(t *testing.T) {
	th := NewBacklogThrottle(ThrottleOptions{MaxThrottle: 10 * time.Second, ProjectBytesPerSec: 1000}, func() Backlog { return Backlog{} })
	defer th.Close()
	k := wal.StreamKey{Project: "busy", Logstore: "l"}
	if d := th.ThrottleTime(k, 1000); d != 0 {
		t.Fatalf("a second's worth: throttled %v", d)
	}
	d := th.ThrottleTime(k, 2000)
	if d < 1900*time.Millisecond || d > 2*time.Second {
		t.Fatalf("2000 bytes past the burst at 1000 B/s: throttled %v, want about 2 s", d)
	}
	if d := th.ThrottleTime(wal.StreamKey{Project: "quiet", Logstore: "l"}, 10); d != 0 {
		t.Fatalf("another project throttled %v", d)
	}
	if d := th.ThrottleTime(k, 1_000_000); d != 10*time.Second {
		t.Fatalf("a huge excess: %v, want the cap", d)
	}
}
