package wal

import (
	"slices"
	"testing"
)

// A panic in badger's decoding of a damaged row (the hook stands in for
// one) loses nothing: the entries read before it in the same Read are
// returned, the next Read reports the damaged entry as a CorruptError up
// to the entry after it, and skipping it delivers every other entry.
// Before, the Read's good entries were dropped while its cursor had
// passed them, and the CorruptError's Next was that cursor: the writer
// committed past entries it never delivered.
func TestReadPanicLosesNothing(t *testing.T) {
	w := openTest(t, mkdir(t), testOptions(t))
	k := sk(0)
	var offs []int64
	for i := range 8 {
		offs = append(offs, mustAppend(t, w, k, testEntry(uint64(i), 1000, 2), false))
	}
	damaged := offs[3]
	itemHook = func(off int64) {
		if off == damaged {
			panic("damaged block")
		}
	}
	t.Cleanup(func() { itemHook = nil })
	got := readThrough(t, w, k)
	if want := []uint64{0, 1, 2, 4, 5, 6, 7}; !slices.Equal(got.ids, want) {
		t.Errorf("entries read %v, want %v (all but the damaged one)", got.ids, want)
	}
	if !slices.Equal(got.corrupt, []int64{damaged}) {
		t.Errorf("corrupt offsets %v, want [%d]", got.corrupt, damaged)
	}
}
