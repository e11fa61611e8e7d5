package wal

import (
	"slices"
	"testing"
)

// TestFrameClasses: the size classes framePool.get searches (sort.SearchInts
// needs them sorted) go from 4 KiB to 64 MiB, as framepool.go says, each
// at most 25 % above the one before, so that a buffer lent is at most that
// much larger than the frame read into it.
func TestFrameClasses(t *testing.T) {
	if !slices.IsSorted(frameClasses) {
		t.Fatalf("frame classes are not sorted: ...%v", frameClasses[len(frameClasses)-6:])
	}
	if first, last := frameClasses[0], frameClasses[len(frameClasses)-1]; first != 4<<10 || last != 64<<20 {
		t.Errorf("frame classes from %d to %d, want 4 KiB to 64 MiB", first, last)
	}
	for i := 1; i < len(frameClasses); i++ {
		if prev, c := frameClasses[i-1], frameClasses[i]; c <= prev || 4*c > 5*prev {
			t.Errorf("class %d after %d: not above it by at most 25 %%", c, prev)
		}
	}
}
