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

// ReplayWith puts a dead letter back carrying another key, whose secret is
// stored encrypted like any other and survives a restart.
func TestReplayWithAnotherKey(t *testing.T) {
	dir := mkdir(t)
	w := openTest(t, dir, testOptions(t))
	k := sk(3)
	mustAppend(t, w, k, testEntry(7, 300, 2), true)
	r, _ := w.Reader(k)
	es := readAll(t, r)
	id, err := w.DeadLetter(k, es[0], "SLS: denied by sts or ram, action: log:PostLogStoreLogs")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(2); err != nil {
		t.Fatal(err)
	}
	r.Close()
	other := Credential{AccessKeyID: "other-akid", AccessKeySecret: "other-secret-never-in-clear"}
	off, err := w.ReplayWith(id, other)
	if err != nil || off != 2 {
		t.Fatalf("ReplayWith: %d, %v", off, err)
	}
	w.Close()
	w = openTest(t, dir, testOptions(t))
	r, _ = w.Reader(k)
	es = readAll(t, r)
	if len(es) != 1 || es[0].Credential != other {
		t.Fatalf("replayed entries %d, credential %q", len(es), es[0].Credential.AccessKeyID)
	}
	if id, _ := checkPayload(es[0].Data); id != 7 {
		t.Fatalf("replayed payload %d", id)
	}
}
