package wal

import (
	"fmt"
	"slices"
	"testing"
)

func TestAddAndTrimSpans(t *testing.T) {
	f := func(have []span, add span, trim int64, want []span) {
		t.Helper()
		got := trimSpans(addSpan(slices.Clone(have), add), trim)
		if !slices.Equal(got, want) {
			t.Errorf("%v + %v, trimmed to %d: %v, want %v", have, add, trim, got, want)
		}
	}
	f(nil, span{2, 4}, 0, []span{{2, 4}})
	f([]span{{2, 4}}, span{4, 6}, 0, []span{{2, 6}})                         // touching: merged
	f([]span{{2, 4}, {8, 9}}, span{5, 6}, 0, []span{{2, 4}, {5, 6}, {8, 9}}) // between
	f([]span{{2, 4}, {6, 8}}, span{3, 7}, 0, []span{{2, 8}})                 // bridging
	f([]span{{2, 4}, {6, 8}}, span{0, 1}, 0, []span{{0, 1}, {2, 4}, {6, 8}})
	f([]span{{2, 4}, {6, 8}}, span{9, 10}, 7, []span{{7, 8}, {9, 10}}) // trimmed into a span
	f([]span{{2, 4}}, span{6, 8}, 8, []span{})
}

// Entries a reader marks delivered past its position read back flagged
// Delivered after a restart, also those a head reader marked, until the
// position passes them; the others do not.
func TestMarkDeliveredSurvivesRestart(t *testing.T) {
	dir := mkdir(t)
	w := openTest(t, dir, testOptions(t))
	k := sk(1)
	for i := range 6 {
		mustAppend(t, w, k, testEntry(uint64(i), 100, 1), true)
	}
	r, err := w.Reader(k)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, r)
	head, from, err := r.SplitHead()
	if err != nil || from != 6 {
		t.Fatalf("SplitHead: from %d, %v", from, err)
	}
	for i := 6; i < 9; i++ {
		mustAppend(t, w, k, testEntry(uint64(i), 100, 1), true)
	}
	readAll(t, head)
	// As a writer with LogGroups 1 and 4 in flight would, and its fresh
	// writer having delivered 6 and 7.
	for _, s := range []span{{2, 4}, {5, 6}, {6, 8}} {
		m := r
		if s.from >= from {
			m = head
		}
		if err := m.MarkDelivered(s.from, s.to); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Commit(1); err != nil { // written after the spans, so they are too
		t.Fatal(err)
	}
	flags := func(w *WAL) string {
		t.Helper()
		r, err := w.Reader(k)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var s string
		for _, e := range readAll(t, r) {
			s += fmt.Sprintf("%d:%v ", e.BaseOffset, e.Delivered)
		}
		return s
	}
	head.Close()
	r.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openTest(t, dir, testOptions(t))
	want := "1:false 2:true 3:true 4:false 5:true 6:true 7:true 8:false "
	if got := flags(w); got != want {
		t.Fatalf("after a restart: %s, want %s", got, want)
	}
	// The position passes the first span and ends in the second.
	r, _ = w.Reader(k)
	readAll(t, r)
	if err := r.Commit(6); err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	w = openTest(t, dir, testOptions(t))
	defer w.Close()
	if got, want := flags(w), "6:true 7:true 8:false "; got != want {
		t.Fatalf("after a commit to 6 and a restart: %s, want %s", got, want)
	}
}
