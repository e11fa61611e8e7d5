package wal

import "testing"

// An entry appended as already delivered reads back flagged, beside its
// JSON flag, also after a restart; the others do not.
func TestDeliveredFlagRoundTrip(t *testing.T) {
	dir := mkdir(t)
	w := openTest(t, dir, testOptions(t))
	k := sk(1)
	f := func(delivered, json bool) *Entry {
		e := testEntry(1, 100, 1)
		e.Delivered, e.JSON = delivered, json
		return e
	}
	want := []*Entry{f(true, false), f(false, true), f(true, true), f(false, false)}
	for _, e := range want {
		mustAppend(t, w, k, e, true)
	}
	check := func(w *WAL) {
		t.Helper()
		r, err := w.Reader(k)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got := readAll(t, r)
		if len(got) != len(want) {
			t.Fatalf("read %d entries, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].Delivered != want[i].Delivered || got[i].JSON != want[i].JSON {
				t.Errorf("entry %d: delivered %v json %v, want %v %v", i, got[i].Delivered, got[i].JSON, want[i].Delivered, want[i].JSON)
			}
		}
	}
	check(w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check(openTest(t, dir, testOptions(t)))
}
